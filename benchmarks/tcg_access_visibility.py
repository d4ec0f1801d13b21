#!/usr/bin/env python3
"""How hot DAMON sees a buffer that is rewritten all the time, with and without TLB flushes.

    .venv/bin/python benchmarks/tcg_access_visibility.py [--repeats 3] [--sizes 4 64]
                                                          [--snapshots 8] [--write-docs]

Boots a guest (fast start, accelerator auto) and, per repeat, buffer size and
variant, starts the self-check's toucher (``damon_eval.damon.selfcheck.BufferToucher``:
memset of the whole buffer in a tight loop), once flushing
its TLB before each pass (``mprotect`` read-only and back) and once not. A vaddr
context with a ``stat`` scheme (default attributes, 5 ms / 100 ms) monitors it;
every second the scheme's tried regions give one snapshot, and the benchmark
records the byte-weighted mean nr_accesses inside the buffer (20 = seen accessed
in every sample of the aggregation interval). ``--write-docs`` replaces the
``tcg-access-visibility`` section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from docs_section import write_section

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
START = "<!-- tcg-access-visibility:start -->"
END = "<!-- tcg-access-visibility:end -->"


def mean_nr_accesses(regions, lo: int, hi: int) -> float:
    """Byte-weighted mean nr_accesses of the regions' overlap with ``[lo, hi)``."""
    from damon_eval.damon.selfcheck import _overlap

    weighted = covered = 0
    for region in regions:
        overlap = _overlap(region.start, region.end, lo, hi)
        weighted += overlap * region.nr_accesses
        covered += overlap
    return weighted / covered if covered else 0.0


def measure(args: argparse.Namespace) -> dict[str, Any]:
    from damon_eval.damon.controller import DamonController, OwnershipRegistry, build_kdamond
    from damon_eval.damon.model import Target
    from damon_eval.damon.schemes import parse_schemes
    from damon_eval.damon.selfcheck import STAT_EVERYTHING, BufferToucher
    from damon_eval.guest import Guest, build_image, load_spec

    image, _ = build_image(load_spec(), progress=False)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp, Guest.start(image, fast_start=True) as guest:
        runner = lambda script: guest.run_script(script, timeout_s=300)  # noqa: E731
        controller = DamonController(guest.fs, registry=OwnershipRegistry(Path(tmp) / "o.json"))
        for repeat in range(args.repeats):
            for size_mib in args.sizes:
                for flush in (True, False):
                    toucher = BufferToucher(
                        guest.fs, runner, size_bytes=size_mib << 20, flush_tlb=flush
                    )
                    with toucher:
                        kdamond, schemes = build_kdamond(
                            "vaddr",
                            [Target(toucher.pid)],
                            schemes=parse_schemes(STAT_EVERYTHING),
                        )
                        means = []
                        with controller.session(kdamond, schemes=schemes) as session:
                            for _ in range(args.snapshots):
                                time.sleep(1.0)
                                (tried,) = session.tried_regions([0])
                                means.append(
                                    mean_nr_accesses(
                                        tried.regions, toucher.start_addr, toucher.end_addr
                                    )
                                )
                    row = {
                        "repeat": repeat + 1,
                        "size_mib": size_mib,
                        "tlb_flush": flush,
                        "snapshot_means": [round(m, 1) for m in means],
                        "min": round(min(means), 1),
                        "max": round(max(means), 1),
                        "mean": round(statistics.mean(means), 1),
                    }
                    rows.append(row)
                    print(json.dumps(row), flush=True)
        return {
            "date": dt.date.today().isoformat(),
            "accel": guest.accel,
            "kernel": guest.run("uname -r", timeout_s=30).stdout.strip(),
            "qemu": guest.qemu_version,
            "vcpus": guest.vcpus,
            "rows": rows,
        }


def section(result: dict[str, Any]) -> str:
    lines = [
        START,
        "## DAMON's view of a hot buffer under TCG",
        "",
        f"`benchmarks/tcg_access_visibility.py`, {result['date']}, {result['accel']}, "
        f"QEMU {result['qemu']}, kernel {result['kernel']}, {result['vcpus']} vCPUs, default "
        "attributes (5 ms sampling, 100 ms aggregation: 20 is the most an aggregation can "
        "count). Byte-weighted mean nr_accesses inside the buffer, one snapshot a second; "
        "see [guest.md](guest.md#damon-under-tcg) for what it means.",
        "",
        "| repeat | buffer | TLB flush per pass | per-snapshot means | min | max | mean |",
        "|---:|---:|---|---|---:|---:|---:|",
    ]
    for row in result["rows"]:
        means = ", ".join(f"{m:.1f}" for m in row["snapshot_means"])
        lines.append(
            f"| {row['repeat']} | {row['size_mib']} MiB | {'yes' if row['tlb_flush'] else 'no'} "
            f"| {means} | {row['min']:.1f} | {row['max']:.1f} | {row['mean']:.1f} |"
        )
    lines.append(END)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[4, 64], metavar="MIB")
    parser.add_argument("--snapshots", type=int, default=8)
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args(argv)
    result = measure(args)
    if args.write_docs:
        print(f"wrote {write_section(section(result), START, END)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
