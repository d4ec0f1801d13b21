#!/usr/bin/env python3
"""Speed and memory of ``damon-eval report wss|heats`` against damo 3.4.3.

Generates a perf-script trace of ``--snapshots`` x ``--regions`` damon_aggregated
events (default 6000 x 300 = 1.8 M events, about 230 MB; never committed),
then runs, as subprocesses measured with ``os.wait4`` (wall time, max RSS):

* ``damo report wss -i TRACE --raw_number``   vs  ``damon-eval report wss -i TRACE``
* ``damo report heatmap -i TRACE --output raw`` vs ``damon-eval report heats -i TRACE``

and checks that the wss numbers agree.  Results go to stdout and, with
``--write-doc``, replace the "Records" section of ``docs/benchmarks.md``.
Targets: the harness at least 10x faster and at most 1/4 of damo's memory.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from docs_section import write_section

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
SECTION_START = "<!-- records-bench:start -->"
SECTION_END = "<!-- records-bench:end -->"


def generate_trace(path: Path, *, snapshots: int = 6000, regions: int = 300, seed: int = 1) -> None:
    """A trace shaped like ``perf script`` output of one kdamond, one target.

    Regions tile a 4 GiB range with random 4 KiB-aligned boundaries that change
    every snapshot; nr_accesses 0..20, age 0..99; the events of one snapshot
    are stamped a few microseconds apart, as real traces are.
    """
    rng = np.random.default_rng(seed)
    base = 140398567211008
    span_pages = 1 << 20
    with path.open("w") as f:
        for s in range(snapshots):
            cuts = np.sort(rng.choice(span_pages - 1, regions - 1, replace=False) + 1) * 4096
            starts = (np.concatenate(([0], cuts)) + base).tolist()
            ends = (np.concatenate((cuts, [span_pages * 4096])) + base).tolist()
            nrs = rng.integers(0, 21, regions).tolist()
            ages = rng.integers(0, 100, regions).tolist()
            t0 = 41_751_439 + s * 100_000
            lines = []
            for k in range(regions):
                t = t0 + k // 50
                lines.append(
                    f"       kdamond.0   516 [001] {t // 1_000_000:6d}.{t % 1_000_000:06d}: "
                    f"damon:damon_aggregated: target_id=0 nr_regions={regions} "
                    f"{starts[k]}-{ends[k]}: {nrs[k]} {ages[k]}\n"
                )
            f.write("".join(lines))


@dataclass(frozen=True)
class Run:
    seconds: float  # wall clock
    cpu_seconds: float  # user + system of the child
    max_rss_kib: int
    stdout: str


def measure(cmd: list[str]) -> Run:
    """Run ``cmd``; wall time, and the child's own CPU time and max RSS (``wait4``)."""
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        err = proc.stderr.read().decode() if proc.stderr else ""
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {err}")
        out.seek(0)
        cpu = usage.ru_utime + usage.ru_stime
        return Run(seconds, cpu, usage.ru_maxrss, out.read().decode())


def wss_numbers(text: str) -> list[tuple[int, int]]:
    """(percentile, wss) pairs of either tool's wss output."""
    pairs = []
    for line in text.splitlines():
        m = re.match(r"\s*(\d+)\s+(\d+)", line)
        if m and not line.startswith("#"):
            pairs.append((int(m.group(1)), int(m.group(2))))
    return pairs


def heats(text: str) -> np.ndarray:
    """Heat column of ``<time> <address> <heat>`` lines (damo's NaN = never observed = 0)."""
    values = [line.split("\t")[2] for line in text.splitlines() if line.strip()]
    return np.nan_to_num(np.array([float(v) for v in values]))


def average(text: str) -> int:
    m = re.search(r"# avr:\s+(\d+)", text)
    return int(m.group(1)) if m else -1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshots", type=int, default=6000)
    parser.add_argument("--regions", type=int, default=300)
    parser.add_argument("--workdir", type=Path, help="where to put the trace (default: temp)")
    parser.add_argument("--skip-damo-heatmap", action="store_true", help="damo heatmap is slow")
    parser.add_argument("--write-doc", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="records-bench-", dir=args.workdir or "/var/tmp"))
    trace = workdir / "trace.perf_script"
    t = time.perf_counter()
    generate_trace(trace, snapshots=args.snapshots, regions=args.regions)
    gen_s = time.perf_counter() - t
    size_mb = trace.stat().st_size / 1e6
    print(f"trace: {args.snapshots} x {args.regions} events, {size_mb:.0f} MB ({gen_s:.1f} s)")

    load_before = os.getloadavg()[0]
    damo = str(VENV_BIN / "damo")
    harness = str(VENV_BIN / "damon-eval")
    rows = []
    try:
        ours = measure([harness, "report", "wss", "-i", str(trace)])
        theirs = measure([damo, "report", "wss", "-i", str(trace), "--raw_number"])
        agree = wss_numbers(ours.stdout) == wss_numbers(theirs.stdout) and average(
            ours.stdout
        ) == average(theirs.stdout)
        rows.append(("report wss", theirs, ours, "yes" if agree else "NO"))
        ours = measure([harness, "report", "heats", "-i", str(trace)])
        if args.skip_damo_heatmap:
            theirs, agree = None, "-"
        else:
            theirs = measure([damo, "report", "heatmap", "-i", str(trace), "--output", "raw"])
            same = np.allclose(heats(ours.stdout), heats(theirs.stdout), rtol=1e-6, atol=1e-9)
            agree = "yes" if same else "NO"
        rows.append(("report heats / heatmap (500x500)", theirs, ours, agree))
    finally:
        trace.unlink(missing_ok=True)
        workdir.rmdir()

    lines = [
        SECTION_START,
        "## Records: `report wss` and `report heats` against damo 3.4.3",
        "",
        f"Run with `python benchmarks/record_bench.py --write-doc` on {platform.node()} "
        f"({os.cpu_count()} CPUs, Python {platform.python_version()}), "
        f"{time.strftime('%Y-%m-%d')}.  Trace: {args.snapshots} snapshots x {args.regions} "
        f"regions = {args.snapshots * args.regions / 1e6:.1f} M `damon_aggregated` events of "
        f"perf-script text, {size_mb:.0f} MB, generated by the script.  Each command runs as "
        "a subprocess; wall time, CPU time (user + system) and the child's max RSS come from "
        "`os.wait4`.  Both tools ran in the same session, one after the other, on a machine "
        f"shared with other work (1-minute load average {load_before:.1f} before and "
        f"{os.getloadavg()[0]:.1f} after the runs), so wall times are inflated for both; the "
        "CPU-time ratio is the steadier figure.",
        "",
        "| command | damo 3.4.3 | damon-eval | speed-up (wall) | speed-up (CPU) "
        "| memory ratio | same output |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, theirs, ours, agree in rows:
        ours_cell = (
            f"{ours.seconds:.2f} s ({ours.cpu_seconds:.2f} s CPU), "
            f"{ours.max_rss_kib / 1024:.0f} MiB"
        )
        if theirs is None:
            damo_cell, wall, cpu, mem = "not run", "-", "-", "-"
        else:
            damo_cell = (
                f"{theirs.seconds:.1f} s ({theirs.cpu_seconds:.1f} s CPU), "
                f"{theirs.max_rss_kib / 1024:.0f} MiB"
            )
            wall = f"{theirs.seconds / ours.seconds:.1f}x"
            cpu = f"{theirs.cpu_seconds / ours.cpu_seconds:.1f}x"
            mem = f"{ours.max_rss_kib / theirs.max_rss_kib:.2f}"
        lines.append(f"| `{name}` | {damo_cell} | {ours_cell} | {wall} | {cpu} | {mem} | {agree} |")
    lines += [
        "",
        "Targets: speed-up >= 10x and memory ratio <= 0.25.",
        SECTION_END,
    ]
    section = "\n".join(lines)
    print(section)
    if args.write_doc:
        print(f"wrote {write_section(section, SECTION_START, SECTION_END)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
