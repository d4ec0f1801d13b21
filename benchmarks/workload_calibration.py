#!/usr/bin/env python3
"""Runtime and memory of the synthetic and debian workloads on this machine, at a scale.

Prepares each workload with its guest plan (paths mapped into a temporary
directory, damon_eval.workloads.local), runs it under a locally built
de-agent and prints runtime, rss.max and memused.avg as a Markdown table.
On a KVM guest the runtimes are close to these (no TCG): scale 1 is meant
to take 20-120 s.  docs/benchmarks.md keeps the results.

    python benchmarks/workload_calibration.py [--scale 1] [--only debian/x264 ...]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from damon_eval.agent.build import build_agent_locally
from damon_eval.measure.samples import compute_metrics, load_agent_output
from damon_eval.workloads import RunParams, WorkloadContext, all_workloads
from damon_eval.workloads.local import local_agent_argv, prepare_locally


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--only", nargs="*", help="workload ids (default: synthetic and debian)")
    args = parser.parse_args()
    context = WorkloadContext()
    workloads = [
        w
        for w in all_workloads()
        if (args.only and w.id in args.only)
        or (not args.only and w.suite in ("synthetic", "debian"))
    ]
    print("| workload | scale | runtime s | rss.max KiB | memused.avg KiB | prepare s |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "guest"
        agent = build_agent_locally(Path(tmp) / "agent")
        for workload in workloads:
            out = Path(tmp) / "runs" / workload.name
            params = RunParams(out_dir=str(out), scale=args.scale, agent_path=str(agent))
            started = time.monotonic()
            prepared = prepare_locally(workload, context, params, root)
            prepare_s = time.monotonic() - started
            if prepared.returncode != 0:
                print(f"| {workload.id} | prepare failed: {prepared.stderr.strip()[-200:]} |")
                continue
            argv = local_agent_argv(workload, context, params, root, timeout_s=600)
            proc = subprocess.Popen(argv)
            while not (out / "target.pid").exists() and proc.poll() is None:
                time.sleep(0.05)
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGUSR1)
            proc.wait()
            result = load_agent_output(out)
            metrics = compute_metrics(result.samples.samples, result.runtime_s)
            status = "" if result.status.ok else f" ({result.status.status})"
            print(
                f"| {workload.id}{status} | {args.scale:g} | {metrics['runtime']:.1f} | "
                f"{metrics['rss.max']} | {metrics['memused.avg']} | {prepare_s:.1f} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
