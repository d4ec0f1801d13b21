#!/usr/bin/env python3
"""ShellFs batches in a guest: what reads, writes, listings and a DAMON start cost.

    .venv/bin/python benchmarks/shellfs_bench.py [--rounds 3] [--accel auto] [--write-docs]

Under TCG every program the batch script starts costs ~100 ms, so the batch
script uses shell builtins only on its success path.  This measures, in one
restored guest: one round trip, 100 reads of a sysfs file, 50 writes, 20
directory listings, and a vaddr kdamond start + scheme stats + stop through the
controller (round trips counted).  ``--compare`` also times the same reads with
the former script form (``$(cat f | base64)`` per read) for reference.
Results go to the ``shellfs`` section of docs/benchmarks.md with ``--write-docs``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from docs_section import write_section  # noqa: E402

from damon_eval.damon.controller import (  # noqa: E402
    DamonController,
    OwnershipRegistry,
    build_kdamond,
)
from damon_eval.damon.model import Target  # noqa: E402
from damon_eval.damon.schemes import parse_schemes  # noqa: E402
from damon_eval.fs import ListDir, Read, ShellFs, Write  # noqa: E402
from damon_eval.guest import Guest, ensure_image  # noqa: E402
from damon_eval.guest.qemu import qemu_version  # noqa: E402

START = "<!-- shellfs-bench:start -->"
END = "<!-- shellfs-bench:end -->"
THP = "/sys/kernel/mm/transparent_hugepage"
OLD_READ = (
    'r() { v=$(cat -- "$1" 2>/dev/null); printf \'%s val %s\\n\' "$N" '
    "\"$(printf '%s' \"$v\" | base64 | tr -d '\\n')\"; }\n"
)


def timed(fn) -> float:
    started = time.monotonic()
    fn()
    return time.monotonic() - started


class CountingFs(ShellFs):
    round_trips: int = 0

    def execute(self, ops):
        self.round_trips += 1
        return super().execute(ops)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--accel", default="auto")
    parser.add_argument("--compare", action="store_true", help="also time the former reads")
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()

    image = ensure_image(progress=False)
    load_before = os.getloadavg()
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp, Guest.start(image, accel=args.accel) as guest:
        runner = guest.fs.runner
        fs = CountingFs(runner=runner, description=f"guest {guest.name}")
        sleeper = int(guest.run("nohup sleep 3600 >/dev/null 2>&1 </dev/null & echo $!", 30).stdout)
        enabled = fs.read(f"{THP}/enabled")
        current = enabled.split("[", 1)[1].split("]", 1)[0]
        for _ in range(args.rounds):
            results.setdefault("one round trip (1 read)", []).append(
                timed(lambda: fs.execute([Read(f"{THP}/enabled")]))
            )
            results.setdefault("100 reads in one batch", []).append(
                timed(lambda: fs.execute([Read(f"{THP}/enabled")] * 100))
            )
            results.setdefault("50 writes in one batch", []).append(
                timed(lambda: fs.execute([Write(f"{THP}/enabled", current)] * 50))
            )
            results.setdefault("20 listings in one batch", []).append(
                timed(lambda: fs.execute([ListDir(THP)] * 20))
            )
            if args.compare:
                script = "N=X\n" + OLD_READ + f"r {THP}/enabled\n" * 100
                results.setdefault("100 reads, former script form", []).append(
                    timed(lambda script=script: runner(script))
                )
            controller = DamonController(fs, registry=OwnershipRegistry(Path(tmp) / "owned.json"))
            kdamond, schemes = build_kdamond(
                "vaddr", [Target(sleeper)], schemes=parse_schemes("4K max min 5 7s max pageout")
            )
            fs.round_trips = 0

            def damon_cycle(kdamond=kdamond, schemes=schemes, controller=controller):
                with controller.session(kdamond, schemes=schemes) as session:
                    session.scheme_stats()

            results.setdefault("kdamond start + scheme stats + stop", []).append(timed(damon_cycle))
            results.setdefault("  (round trips of that cycle)", []).append(fs.round_trips)
    load_after = os.getloadavg()

    lines = [
        START,
        "## ShellFs batches in a guest (`damon_eval.fs.ShellFs`)",
        "",
        f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC by `benchmarks/shellfs_bench.py "
        f"--rounds {args.rounds}{' --compare' if args.compare else ''}`: accelerator "
        f"**{guest.accel}**, QEMU {qemu_version()}, {os.cpu_count()} host CPUs, guest 2 vCPUs, "
        f"kernel {image.kernel_release}.  Host load average (1 min) {load_before[0]:.1f} before, "
        f"{load_after[0]:.1f} after.",
        "",
        "| what | seconds (median of rounds) |",
        "|---|---|",
    ]
    for name, values in results.items():
        median = statistics.median(values)
        shown = f"{median:g}" if "round trips" in name else f"{median:.2f}"
        lines.append(f"| {name} | {shown} |")
    lines.append(END)
    section = "\n".join(lines) + "\n"
    print(section)
    if args.write_docs:
        print(f"wrote {write_section(section, START, END)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
