#!/usr/bin/env python3
"""de-agent's own cost: resident memory and CPU time, per compiler and sample interval.

Runs `de-agent run --hold none -- <python holding 200 MiB in 4 processes for N s>`
and reads the agent's VmRSS, VmHWM and utime+stime from /proc near the end of
the run.  Prints a Markdown table (docs/benchmarks.md keeps the results).

    python benchmarks/agent_overhead.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from damon_eval.agent.build import build_agent_locally, local_compilers

WORKLOAD = """
import os, sys, time
pids = []
for _ in range(3):
    pid = os.fork()
    if pid == 0:
        b = bytearray(50 << 20)
        time.sleep(float(sys.argv[1]))
        os._exit(0)
    pids.append(pid)
b = bytearray(50 << 20)
time.sleep(float(sys.argv[1]))
for pid in pids:
    os.waitpid(pid, 0)
"""


def status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def measure(agent: Path, interval_ms: int, seconds: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.Popen(
            [
                agent,
                "run",
                "--out",
                tmp,
                "--hold",
                "none",
                "--interval-ms",
                str(interval_ms),
                "--",
                sys.executable,
                "-c",
                WORKLOAD,
                str(seconds),
            ],
        )
        time.sleep(seconds - 0.5)
        result = {
            "vmrss_kib": status_kib(proc.pid, "VmRSS"),
            "vmhwm_kib": status_kib(proc.pid, "VmHWM"),
            "cpu_ms": cpu_ticks(proc.pid) * 1000 // os.sysconf("SC_CLK_TCK"),
        }
        proc.wait()
        rows = (Path(tmp) / "samples.csv").read_text().splitlines()[1:]
        result["samples"] = len(rows)
        result["max_agent_rss_column"] = max(int(r.split(",")[17]) for r in rows)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    variants = [(cc, True) for cc in local_compilers()] + [("gcc", False)]
    print("| build | interval | samples | VmRSS KiB | VmHWM KiB | CPU ms | CPU % |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as build_dir:
        for cc, static in variants:
            agent = build_agent_locally(Path(build_dir), cc=cc, static=static)
            for interval_ms in (1000, 100):
                r = measure(agent, interval_ms, args.seconds)
                label = f"{cc} {'-static' if static else 'dynamic'}"
                pct = r["cpu_ms"] / (args.seconds * 1000) * 100
                print(
                    f"| {label} | {interval_ms} ms | {r['samples']} | {r['vmrss_kib']} | "
                    f"{r['vmhwm_kib']} | {r['cpu_ms']} | {pct:.2f} |"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
