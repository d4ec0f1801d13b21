#!/usr/bin/env python3
"""Round trips and seconds of the DAMON controller in a real guest, before and after a run.

    .venv/bin/python benchmarks/controller_rtt.py [--rounds 5] [--baseline REV] [--write-docs]

Boots a guest (fast start, accelerator auto) and drives DAMON exactly as a
measured run does (``damon_eval.measure.execute.damon_for_run``), with the guest's
``FileSystem`` wrapped to count and time every batch (one batch = one SSH
command):

* ``vaddr``: the ``prcl`` configuration (vaddr + one pageout scheme) on a
  sleeping process,
* ``paddr + trace``: the ``prec`` configuration (paddr over the largest System
  RAM range, with a tracefs instance).

"set-up" is everything ``damon_for_run`` does before the workload may start
(probe, /proc/iomem, tracefs, trace instance, kdamond start); "teardown" is
everything after (kdamond off, its directory removed, trace instance removed).

``--baseline REV`` also measures the code of git revision REV (exported to a
temporary directory, run in its own process and guest) for a before/after
comparison.  ``--write-docs`` replaces the ``controller-rtt`` section of
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from docs_section import write_section

REPO = Path(__file__).resolve().parent.parent
START = "<!-- controller-rtt:start -->"
END = "<!-- controller-rtt:end -->"
SCENARIOS = (("vaddr", "prcl"), ("paddr + trace", "prec"))
NR_KDAMONDS = "/sys/kernel/mm/damon/admin/kdamonds/nr_kdamonds"


# ---------------------------------------------------------------- worker


def worker(code_dir: Path, rounds: int, accel: str) -> dict[str, Any]:
    """Runs in its own process with ``code_dir`` first on sys.path."""
    sys.path.insert(0, str(code_dir))
    from damon_eval.config.configuration import load_configuration
    from damon_eval.fs import FileSystem
    from damon_eval.guest import Guest, build_image, load_spec
    from damon_eval.measure.execute import damon_for_run

    class TimedFs(FileSystem):
        """Counts and times the batches of another FileSystem."""

        def __init__(self, inner: FileSystem):
            self.inner = inner
            self.description = inner.description
            self.batches: list[tuple[str, int, float]] = []

        def execute(self, ops):  # type: ignore[no-untyped-def]
            started = time.monotonic()
            try:
                return self.inner.execute(ops)
            finally:
                first = ops[0] if ops else None
                label = f"{type(first).__name__} {first.path}" if first is not None else "-"
                self.batches.append((label, len(ops), time.monotonic() - started))

    import damon_eval

    image, _ = build_image(load_spec(), progress=False)
    result: dict[str, Any] = {"scenarios": {}, "package": damon_eval.__file__}
    with Guest.start(image, accel=accel, fast_start=True) as guest:
        result["accel"] = guest.accel
        result["kernel"] = guest.run("uname -r", timeout_s=30).stdout.strip()
        trivial = []
        for _ in range(5):
            started = time.monotonic()
            guest.run("true", timeout_s=30)
            trivial.append(time.monotonic() - started)
        result["ssh_true_s"] = statistics.median(trivial)
        with tempfile.TemporaryDirectory() as tmp:
            for label, config_name in SCENARIOS:
                configuration = load_configuration(config_name)
                rows = []
                for n in range(rounds):
                    sleeper = guest.run(
                        "nohup setsid sleep 3600 </dev/null >/dev/null 2>&1 & echo $!",
                        timeout_s=30,
                    ).stdout.split()[-1]
                    fs = TimedFs(guest.fs)
                    proxy = SimpleNamespace(fs=fs)
                    registry = Path(tmp) / f"owned-{n}.json"
                    started = time.monotonic()
                    with damon_for_run(proxy, configuration, int(sleeper), registry) as (
                        session,
                        _instance,
                    ):
                        setup_s = time.monotonic() - started
                        setup_batches = list(fs.batches)
                        fs.batches.clear()
                        assert session is not None, "the configuration starts no kdamond"
                        stopping = time.monotonic()
                    teardown_s = time.monotonic() - stopping
                    left = guest.fs.read(NR_KDAMONDS)
                    guest.run(f"kill {sleeper}", timeout_s=30)
                    rows.append(
                        {
                            "setup_s": setup_s,
                            "setup_round_trips": len(setup_batches),
                            "teardown_s": teardown_s,
                            "teardown_round_trips": len(fs.batches),
                            "nr_kdamonds_after": left,
                            "setup_batches": setup_batches,
                            "teardown_batches": list(fs.batches),
                        }
                    )
                    print(
                        f"{label} round {n + 1}: set-up {len(setup_batches)} round trips "
                        f"{setup_s:.2f} s, teardown {len(fs.batches)} round trips "
                        f"{teardown_s:.2f} s",
                        file=sys.stderr,
                    )
                result["scenarios"][label] = rows
    return result


# ---------------------------------------------------------------- driver


def run_worker(code_dir: Path, rounds: int, accel: str) -> dict[str, Any]:
    proc = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--worker",
            "--code",
            str(code_dir),
            "--rounds",
            str(rounds),
            "--accel",
            accel,
        ],
        cwd=code_dir,
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def export_revision(rev: str, into: Path) -> str:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", rev], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()
    archive = subprocess.Popen(["git", "archive", commit], cwd=REPO, stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", str(into)], stdin=archive.stdout, check=True)
    if archive.wait() != 0:
        raise SystemExit(f"git archive {commit} failed")
    return commit


def median(rows: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def spread(rows: list[dict[str, Any]], key: str) -> str:
    values = [r[key] for r in rows]
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def trips(rows: list[dict[str, Any]], key: str) -> str:
    values = sorted({r[key] for r in rows})
    return "/".join(str(v) for v in values)


def section(results: dict[str, dict[str, Any]], rounds: int, load: tuple[float, float]) -> str:
    any_result = next(iter(results.values()))
    lines = [
        START,
        "## DAMON controller: round trips before and after a run (`benchmarks/controller_rtt.py`)",
        "",
        f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {rounds} rounds per scenario, "
        f"in a fast-started guest (accelerator **{any_result['accel']}**, kernel "
        f"{any_result['kernel']}, 2 vCPUs / 2048 MiB) on a {os.cpu_count()}-CPU host with load "
        f"average {load[0]:.1f} before and {load[1]:.1f} after (TCG time grows with it).  The "
        "DAMON steps are `damon_eval.measure.execute.damon_for_run` itself, with the guest's "
        "FileSystem wrapped to count and time each batch (= one SSH command).  `vaddr`: the "
        "`prcl` configuration (vaddr, one pageout scheme) on a sleeping process; `paddr + "
        "trace`: `prec` (paddr over the largest System RAM range, tracefs instance).  Set-up = "
        "probe, /proc/iomem, tracefs, trace instance, kdamond start with read-back and pid; "
        "teardown = `off`, kdamond directory removed, trace instance removed.  Seconds: median "
        "(min-max).",
        "",
        "| code | scenario | set-up round trips | set-up s | teardown round trips | "
        "teardown s | one `true` over SSH s |",
        "|---|---|---|---|---|---|---|",
    ]
    for code, result in results.items():
        for label, rows in result["scenarios"].items():
            lines.append(
                f"| {code} | {label} | {trips(rows, 'setup_round_trips')} | "
                f"{spread(rows, 'setup_s')} | {trips(rows, 'teardown_round_trips')} | "
                f"{spread(rows, 'teardown_s')} | {result['ssh_true_s']:.2f} |"
            )
    lines += [
        "",
        "Round-trip counts are exact and the same every round (the budgets are enforced by "
        "`tests/unit/test_damon_round_trips.py` and, on the real kernel, "
        "`tests/integration/test_round_trips_guest.py`); seconds vary with the host's load.  "
        "What is left per batch is one SSH command plus the kernel's own work (creating the "
        "trace instance allocates its ring buffers).",
    ]
    if len(results) == 2:
        (old_name, old), (new_name, new) = results.items()
        lines += ["", f"Saved per DAMON run ({new_name} vs {old_name}):", ""]
        for label in new["scenarios"]:
            before = median(old["scenarios"][label], "setup_s") + median(
                old["scenarios"][label], "teardown_s"
            )
            after = median(new["scenarios"][label], "setup_s") + median(
                new["scenarios"][label], "teardown_s"
            )
            lines.append(
                f"- {label}: {before:.2f} s -> {after:.2f} s ({before - after:.2f} s less; "
                f"36 DAMON runs of the quick campaign: {36 * (before - after):.0f} s)"
            )
    current = results[next(reversed(results))]
    lines += ["", "Batches of the last round (current code):", ""]
    for label, rows in current["scenarios"].items():
        last = rows[-1]
        for phase in ("setup", "teardown"):
            described = "; ".join(
                f"{first} +{n - 1} ops {s:.2f} s" for first, n, s in last[f"{phase}_batches"]
            )
            lines.append(f"- {label}, {phase}: {described}")
    lines.append(END)
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--accel", default="auto", choices=("auto", "kvm", "tcg"))
    parser.add_argument("--baseline", help="also measure this git revision (before/after)")
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--code", type=Path, default=REPO, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.code, args.rounds, args.accel)))
        return 0

    load_before = os.getloadavg()
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="controller-rtt-") as tmp:
        if args.baseline:
            commit = export_revision(args.baseline, Path(tmp))
            results[f"before ({commit})"] = run_worker(Path(tmp), args.rounds, args.accel)
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        name = f"after ({head}{'+changes' if dirty else ''})" if args.baseline else head
        results[name] = run_worker(REPO, args.rounds, args.accel)
    text = section(results, args.rounds, (load_before[0], os.getloadavg()[0]))
    print(text)
    if args.write_docs:
        print(f"wrote {write_section(text, START, END)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
