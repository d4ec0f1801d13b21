"""The held process DAMON is about to target is checked against the workload's benchmark."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from parsec_tree import fake_parsec_tree

from damon_eval.measure.execute import held_target
from damon_eval.workloads import RunParams, WorkloadContext, get_workload


class _Guest:
    def __init__(self, stdout):
        self.stdout = stdout
        self.commands = []

    def run(self, cmd, timeout_s):
        self.commands.append(cmd)
        return SimpleNamespace(exit_status=0, stdout=self.stdout, stderr="")


def _plan(tmp_path, workload_id):
    root = fake_parsec_tree(tmp_path / "parsec-3.0", "simsmall")
    context = WorkloadContext.from_config({"parsec": {"path": str(root), "input": "simsmall"}})
    return SimpleNamespace(
        workload=get_workload(workload_id), context=context, params=RunParams(out_dir="/r")
    )


def test_the_benchmark_binary_is_recorded_as_the_target(tmp_path):
    guest = _Guest(
        "streamcluster\n/opt/parsec-3.0/pkgs/kernels/streamcluster/inst/x/bin/streamcluster\n"
    )
    target = held_target(guest, 2305, _plan(tmp_path, "parsec3/streamcluster"))
    assert target == {
        "pid": 2305,
        "comm": "streamcluster",
        "exe": "/opt/parsec-3.0/pkgs/kernels/streamcluster/inst/x/bin/streamcluster",
    }
    assert "/proc/2305/comm" in guest.commands[0]


def test_a_held_shell_fails_the_run_naming_both(tmp_path):
    from damon_eval.measure.plan import Failure

    guest = _Guest("run.sh\n/usr/bin/dash\n")
    with pytest.raises(Failure, match=r"'run.sh' \(/usr/bin/dash\), not the benchmark"):
        held_target(guest, 7, _plan(tmp_path, "parsec3/streamcluster"))
