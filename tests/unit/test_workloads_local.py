"""Every synthetic and debian workload, prepared and run for real on this host.

The guest paths (/opt/damon-eval, /var/tmp/damon-eval) are mapped into a
temporary directory; otherwise the plans run exactly as a guest would run
them: uploads, prepare script, then ``de-agent run`` with the workload's
command, released with SIGUSR1, and its samples checked.  A workload whose
program is not installed here is skipped, saying so.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess

import pytest
from agent_helpers import finish, need_compiler, proc_comm, proc_state, read_pid_file, wait_until

from damon_eval.agent.build import build_agent_locally
from damon_eval.measure.samples import compute_metrics, load_agent_output
from damon_eval.workloads import RunParams, WorkloadContext, get_workload
from damon_eval.workloads.local import local_agent_argv, prepare_locally
from damon_eval.workloads.truth import load_ground_truth

CASES = [
    # id, scale, programs it needs here, minimal peak RSS of the target tree (KiB)
    ("synthetic/zigzag", 0.02, ("gcc",), 200 * 1024),
    ("synthetic/hotcold", 0.02, ("gcc",), 280 * 1024),
    ("debian/x264", 0.025, ("x264", "python3"), 20 * 1024),
    ("debian/vips", 0.03, ("vips",), 10 * 1024),
    ("debian/redis", 0.01, ("redis-server", "redis-benchmark", "redis-cli"), 5 * 1024),
    ("debian/zstd", 0.04, ("zstd", "python3"), 10 * 1024),
    ("debian/sqlite3", 0.05, ("sqlite3",), 5 * 1024),
]


@pytest.mark.parametrize(("workload_id", "scale", "programs", "min_rss_kib"), CASES)
def test_workload_runs_under_the_agent(tmp_path, workload_id, scale, programs, min_rss_kib):
    need_compiler()
    missing = [p for p in programs if not shutil.which(p)]
    if missing:
        pytest.skip(f"{workload_id} needs {' '.join(missing)}, not installed on this host")
    agent = build_agent_locally(tmp_path / "agent-build")
    workload = get_workload(workload_id)
    context = WorkloadContext()
    root = tmp_path / "guest"
    out = tmp_path / "run"
    params = RunParams(out_dir=str(out), scale=scale, agent_path=str(agent))
    prepared = prepare_locally(workload, context, params, root)
    assert prepared.returncode == 0, prepared.stderr
    argv = local_agent_argv(workload, context, params, root, interval_ms=100, timeout_s=120)
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pid = wait_until(lambda: read_pid_file(out / "target.pid"), 30, "held target")
    plan = workload.run_plan(context, params)
    assert proc_state(pid) == "t", "held before its first instruction"
    assert proc_comm(pid) == plan.target
    os.kill(proc.pid, signal.SIGUSR1)
    code, _, err = finish(proc, 180)
    log = (out / "workload.log").read_text()
    assert code == 0, f"{err}\n{log[-2000:]}"
    result = load_agent_output(out)
    assert result.status.ok, result.status
    metrics = compute_metrics(result.samples.samples, result.runtime_s)
    assert metrics["runtime"] > 0
    assert metrics["rss.max"] >= min_rss_kib, metrics
    assert metrics["harness_rss.max"] < 1024
    if workload.suite == "synthetic":
        truth = load_ground_truth(out / "truth.json")
        assert truth.pid == pid
        assert truth.phases[0].start_s >= result.status.release_mono_s
    if workload_id == "debian/redis":
        assert "SET" in log and "GET" in log
