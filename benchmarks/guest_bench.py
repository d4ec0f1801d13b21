#!/usr/bin/env python3
"""Guest timings: image build (cold, cached), cold boot, restore, fixed cost of one run.

    .venv/bin/python benchmarks/guest_bench.py [--rounds 3] [--cold-build] [--write-docs]

Targets under TCG on a 2-core machine: cached build <= 1 s, cold boot to SSH
<= 45 s, restored guest ready <= 10 s.  Results (with the accelerator, QEMU
version and the host's load, since TCG timings depend on it) go to the
``guest`` section of docs/benchmarks.md with ``--write-docs``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from docs_section import write_section  # noqa: E402

from damon_eval.guest import Guest, build_image, load_spec  # noqa: E402
from damon_eval.guest.qemu import create_overlay, qemu_version  # noqa: E402

START = "<!-- guest-bench:start -->"
END = "<!-- guest-bench:end -->"
TARGETS = {
    "cached build (CLI, end to end)": 1.0,
    "cold boot to SSH": 45.0,
    "restored guest ready": 10.0,
}


def summarize(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.median(values):.2f} (min {min(values):.2f}, max {max(values):.2f})"


def timed(fn) -> float:
    started = time.monotonic()
    fn()
    return time.monotonic() - started


def cold_build_seconds(fresh_downloads: bool) -> float:
    """A full build into a throw-away cache (sharing the .deb cache unless fresh)."""
    real_cache = Path(os.environ.get("DAMON_EVAL_CACHE", Path.home() / ".cache/damon-eval"))
    with tempfile.TemporaryDirectory(prefix="damon-eval-bench-") as tmp:
        if not fresh_downloads and (real_cache / "debs").is_dir():
            (Path(tmp) / "debs").symlink_to(real_cache / "debs")
        env = {**os.environ, "DAMON_EVAL_CACHE": tmp}
        started = time.monotonic()
        subprocess.run(
            [sys.executable, "-m", "damon_eval", "guest", "build", "--quiet"],
            check=True,
            env=env,
            cwd=REPO,
        )
        return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--accel", default="auto", choices=("auto", "kvm", "tcg"))
    parser.add_argument("--cold-build", action="store_true", help="also time a full build")
    parser.add_argument(
        "--fresh-downloads", action="store_true", help="cold build without the .deb cache"
    )
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()

    results: dict[str, list[float]] = {}
    image, _ = build_image(load_spec(), progress=True)
    load_before = os.getloadavg()

    if args.cold_build:
        label = (
            "cold build (fresh downloads)"
            if args.fresh_downloads
            else ("cold build (warm .deb cache)")
        )
        results[label] = [cold_build_seconds(args.fresh_downloads)]
    results["cached build (CLI, end to end)"] = [
        timed(
            lambda: subprocess.run(
                [sys.executable, "-m", "damon_eval", "guest", "build", "--quiet"],
                check=True,
                cwd=REPO,
                stdout=subprocess.DEVNULL,
            )
        )
        for _ in range(args.rounds)
    ]
    results["cached build (in process)"] = [
        timed(lambda: build_image(load_spec(), progress=False)) for _ in range(args.rounds)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        results["overlay creation"] = [
            timed(lambda i=i: create_overlay(image.disk_path, Path(tmp) / f"o{i}.qcow2"))
            for i in range(args.rounds)
        ]

    accel = "?"
    for _ in range(args.rounds):
        guest = Guest.start(image, accel=args.accel, fast_start=False)
        accel = guest.accel
        results.setdefault("cold boot to SSH", []).append(guest.boot_seconds)
        results.setdefault("shutdown (sync + quit)", []).append(timed(guest.shutdown))

    # Make sure the saved state exists before timing restores.
    state_started = time.monotonic()
    with Guest.start(image, accel=args.accel) as guest:
        state_key = guest.state_key
    results["first fast start (incl. making the state if missing)"] = [
        time.monotonic() - state_started
    ]
    for _ in range(args.rounds):
        started = time.monotonic()
        guest = Guest.start(image, accel=args.accel)
        ready = time.monotonic() - started
        results.setdefault("restored guest ready", []).append(ready)
        results.setdefault("restore (QEMU start to SSH, boot_seconds)", []).append(
            guest.boot_seconds
        )
        run_started = time.monotonic()
        guest.run("true", timeout_s=30)
        results.setdefault("one trivial command over SSH", []).append(
            time.monotonic() - run_started
        )
        results.setdefault("shutdown (sync + quit)", []).append(timed(guest.shutdown))
        results.setdefault("fixed cost of one run (start .. shutdown)", []).append(
            time.monotonic() - started
        )
    load_after = os.getloadavg()

    lines = [
        START,
        "## Guest (`damon_eval.guest`)",
        "",
        f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC by `benchmarks/guest_bench.py "
        f"--rounds {args.rounds}`: accelerator **{accel}**, QEMU {qemu_version()}, "
        f"{os.cpu_count()} host CPUs, guest 2 vCPUs / 2048 MiB, image {image.key} "
        f"(kernel {image.kernel_release}), saved state {state_key}.",
        f"Host load average (1 min) {load_before[0]:.1f} before, {load_after[0]:.1f} after: "
        "TCG timings grow with the host's load (other jobs share these 2 cores).",
        "",
        "| what | seconds (median of rounds) | target |",
        "|---|---|---|",
    ]
    for name, values in results.items():
        target = TARGETS.get(name)
        verdict = ""
        if target is not None:
            verdict = f"<= {target:g} s " + (
                "met" if statistics.median(values) <= target else "MISSED"
            )
        lines.append(f"| {name} | {summarize(values)} | {verdict} |")
    lines.append(END)
    section = "\n".join(lines) + "\n"
    print(section)
    if args.write_docs:
        print(f"wrote {write_section(section, START, END)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
