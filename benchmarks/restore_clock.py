#!/usr/bin/env python3
"""What setting the guest's clock after a restore buys: its wall-clock offset, the
rate of its clock, and its random numbers, before and after the step.

    .venv/bin/python benchmarks/restore_clock.py [--rounds 5] [--rate-s 10] [--write-doc]

Every round restores the default image's saved state as every fast-started run does
(``Guest.start``).  Around the harness's own step
(:meth:`damon_eval.guest.running.RunningGuest.sync_clock`: ``date -s`` from the host,
then 32 host-random bytes written into ``/dev/urandom``) it measures:

* the guest's wall-clock offset from the host (``date +%s.%N`` in the guest against
  the host's time at the middle of the SSH round trip), before and after the step;
* the rate of the guest's clock once synced: guest seconds per host second over
  ``--rate-s`` seconds (the runtimes are CLOCK_MONOTONIC, which runs at the same rate);
* 16 bytes of ``/dev/urandom``, read before the step (in a copy of the guest's state
  that the step has not touched yet: a first SSH command) and after it, compared
  across rounds.

``--write-doc`` puts the table into docs/benchmarks.md (between its markers).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from docs_section import write_section  # noqa: E402

from damon_eval.guest import Guest, build_image, load_spec  # noqa: E402
from damon_eval.guest.running import RunningGuest  # noqa: E402

START = "<!-- restore-clock:start -->"
END = "<!-- restore-clock:end -->"


def wall_offset_s(guest: RunningGuest) -> tuple[float, float]:
    """(guest wall clock - host wall clock, SSH round trip), both in seconds."""
    sent = time.time()
    said = guest.run("date +%s.%N", timeout_s=30).stdout.strip()
    received = time.time()
    return float(said) - (sent + received) / 2, received - sent


def urandom_bytes(guest: RunningGuest) -> str:
    return guest.run("head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \\n'", timeout_s=30).stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rate-s", type=float, default=10.0)
    parser.add_argument("--write-doc", action="store_true")
    args = parser.parse_args()

    image, _ = build_image(load_spec(), progress=True)
    before: dict[str, object] = {}
    original_sync = RunningGuest.sync_clock

    def measured_sync(self: RunningGuest) -> None:
        # The first commands after the restore, before the harness's own step.
        before["offset"], before["rtt"] = wall_offset_s(self)
        before["random"] = urandom_bytes(self)
        original_sync(self)

    RunningGuest.sync_clock = measured_sync  # type: ignore[method-assign]
    with Guest.start(image, accel="auto") as guest:  # makes the saved state if missing
        state_key = guest.state_key
    load_start = os.getloadavg()
    rounds = []
    for number in range(1, args.rounds + 1):
        before.clear()
        with Guest.start(image, accel="auto") as guest:
            after_offset, after_rtt = wall_offset_s(guest)
            after_random = urandom_bytes(guest)
            host_start, (guest_start, _) = time.time(), wall_offset_s(guest)
            time.sleep(args.rate_s)
            host_end, (guest_end, _) = time.time(), wall_offset_s(guest)
            elapsed_host = host_end - host_start
            # offsets are guest - host: the guest's elapsed time is host's + drift
            rate = (elapsed_host + guest_end - guest_start) / elapsed_host
            accel = guest.accel
        row = {
            "round": number,
            "offset_before_s": before["offset"],
            "rtt_before_s": before["rtt"],
            "offset_after_s": after_offset,
            "rtt_after_s": after_rtt,
            "rate": rate,
            "random_before": before["random"],
            "random_after": after_random,
        }
        rounds.append(row)
        print(
            f"round {number}: offset before {row['offset_before_s']:+.3f} s, after "
            f"{after_offset * 1000:+.1f} ms (rtt {after_rtt * 1000:.0f} ms), rate {rate:.6f}, "
            f"urandom before {row['random_before']} after {after_random}",
            flush=True,
        )
    RunningGuest.sync_clock = original_sync  # type: ignore[method-assign]
    load_end = os.getloadavg()

    def spread(key: str, scale: float = 1.0, fmt: str = "{:+.3f}") -> str:
        values = [row[key] * scale for row in rounds]
        return (
            f"{fmt.format(statistics.median(values))} "
            f"({fmt.format(min(values))} .. {fmt.format(max(values))})"
        )

    distinct_before = len({row["random_before"] for row in rounds})
    distinct_after = len({row["random_after"] for row in rounds})
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        START,
        "## The guest's clock after a restore (`benchmarks/restore_clock.py`)",
        "",
        f"Measured {stamp} by `benchmarks/restore_clock.py --rounds {args.rounds} "
        f"--rate-s {args.rate_s:g}`: accelerator **{accel}**, image {image.key} (kernel "
        f"{image.kernel_release}), saved state {state_key}, {os.cpu_count()} host CPUs, "
        f"host load average (1 min) {load_start[0]:.1f} before, {load_end[0]:.1f} after.",
        "",
        "| what | before the step | after the step |",
        "|---|---|---|",
        f"| wall-clock offset, guest - host, s: median (min .. max) | "
        f"{spread('offset_before_s')} | {spread('offset_after_s')} |",
        f"| SSH round trip of the reading, ms | {spread('rtt_before_s', 1000, '{:.0f}')} | "
        f"{spread('rtt_after_s', 1000, '{:.0f}')} |",
        f"| distinct 16-byte reads of /dev/urandom in {args.rounds} restores | "
        f"{distinct_before} | {distinct_after} |",
        f"| guest seconds per host second over {args.rate_s:g} s | - | "
        f"{spread('rate', 1.0, '{:.5f}')} |",
        "",
    ]
    lines.append(END)
    section = "\n".join(lines)
    print(section)
    if args.write_doc:
        write_section(section, START, END)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
