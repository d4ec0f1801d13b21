"""The real-kernel self-checks, driven against the fake kernel and a fake target runner.

The fake runner plays the target machine: it "starts" the buffer toucher by
writing its info file into the fake tree, and serves trace_pipe output and the
monotonic clock.  The fake kernel's tried-regions oracle plays DAMON.  This
checks each check's control flow and verdicts; the guest tests run them for real.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence

import pytest
from fakekernel import FakeKernel

from damon_eval.damon.controller import OwnershipRegistry
from damon_eval.damon.selfcheck import (
    _TOUCHER,
    check_paddr,
    check_tracefs_recording,
    check_vaddr_hot_buffer,
    run_selfchecks,
    union_length,
)
from damon_eval.fs import CommandResult

BUFFER_START = 0x7F0000000000
SIZE = 64 << 20
PID = 4321


class FakeTarget:
    def __init__(self, kernel: FakeKernel, *, trace_lines: Sequence[str] = (), now: float = 100.0):
        self.kernel = kernel
        self.trace_lines = list(trace_lines)
        self.now = now
        self.scripts: list[str] = []
        kernel.host("/tmp").mkdir(parents=True, exist_ok=True)

    def __call__(self, script: str) -> CommandResult:
        self.scripts.append(script)
        if "nohup" in script:
            info = script.splitlines()[0].split()[-1]  # "rm -f <info file>"
            self.kernel.host(info).write_text(f"{PID} {BUFFER_START} {BUFFER_START + SIZE}\n")
            return CommandResult(0, f"{PID}\n", "")
        if "trace_pipe" in script:
            return CommandResult(124, "".join(line + "\n" for line in self.trace_lines), "")
        if "time.monotonic" in script:
            return CommandResult(0, f"{self.now}\n", "")
        return CommandResult(0, "", "")


def oracle(nr_accesses_in_buffer: int):
    def tried(index: int, scheme: int, kernel: FakeKernel):
        return [
            (BUFFER_START - (1 << 20), BUFFER_START, 0, 9),
            (BUFFER_START, BUFFER_START + SIZE // 2, nr_accesses_in_buffer, 4),
            (BUFFER_START + SIZE // 2, BUFFER_START + SIZE, nr_accesses_in_buffer, 4),
        ]

    return tried


def no_sleep(seconds: float) -> None:
    return None


@pytest.fixture
def registry(tmp_path) -> OwnershipRegistry:
    return OwnershipRegistry(tmp_path / "owned.json")


def test_vaddr_check_passes_when_damon_sees_the_buffer(tmp_path, registry):
    kernel = FakeKernel(tmp_path, tried_oracle=oracle(8))
    target = FakeTarget(kernel)
    result = check_vaddr_hot_buffer(kernel.fs, target, registry=registry, sleep=no_sleep)
    assert result.status == "pass", result
    assert result.details["hot_bytes_in_buffer"] == SIZE
    assert result.details["max_nr_accesses_in_buffer"] == 8
    assert result.details["nr_regions"] == [3] * 5
    assert (f"{kernel.context_dir(0)}/targets/0/pid_target", str(PID)) in kernel.writes
    assert kernel.nr_kdamonds() == 0
    assert any(s.startswith(f"kill {PID}") for s in target.scripts)


def test_vaddr_check_fails_when_damon_sees_nothing(tmp_path, registry):
    kernel = FakeKernel(tmp_path, tried_oracle=oracle(0))
    result = check_vaddr_hot_buffer(
        kernel.fs, FakeTarget(kernel), registry=registry, sleep=no_sleep
    )
    assert result.status == "fail" and "0% of the touched 64 MiB" in result.message
    assert kernel.nr_kdamonds() == 0


def test_vaddr_check_unites_snapshots(tmp_path, registry):
    # Each snapshot sees a different quarter of the buffer accessed: 3 of 4 seen.
    calls = []

    def rotating(index: int, scheme: int, kernel: FakeKernel):
        calls.append(1)
        quarter = SIZE // 4
        n = len(calls) % 3
        return [
            (BUFFER_START + q * quarter, BUFFER_START + (q + 1) * quarter, 1 if q == n else 0, 1)
            for q in range(4)
        ]

    kernel = FakeKernel(tmp_path, tried_oracle=rotating)
    result = check_vaddr_hot_buffer(
        kernel.fs, FakeTarget(kernel), registry=registry, sleep=no_sleep
    )
    assert result.status == "pass" and result.details["hot_bytes_in_buffer"] == 3 * SIZE // 4


def test_union_length():
    assert union_length([(0, 10), (5, 15), (20, 25), (21, 22)]) == 20
    assert union_length([]) == 0


def test_vaddr_check_skips_without_tried_regions(tmp_path, registry):
    kernel = FakeKernel(tmp_path, sysfs=frozenset({"avail_operations"}))
    result = check_vaddr_hot_buffer(
        kernel.fs, FakeTarget(kernel), registry=registry, sleep=no_sleep
    )
    assert result.status == "skip" and "tried_regions" in result.message
    assert kernel.nr_kdamonds() == 0


def test_paddr_check(tmp_path, registry):
    kernel = FakeKernel(tmp_path)
    result = check_paddr(kernel.fs, FakeTarget(kernel), registry=registry, sleep=no_sleep)
    assert result.status == "pass", result
    assert result.details["system_ram"] == [0x100000000, 0x180000000]
    assert (f"{kernel.context_dir(0)}/operations", "paddr") in kernel.writes

    outside = FakeKernel(tmp_path / "2", tried_oracle=lambda i, s, k: [(0, 4096, 0, 0)])
    result = check_paddr(outside.fs, FakeTarget(outside), registry=registry, sleep=no_sleep)
    assert result.status == "fail" and "outside RAM" in result.message


def trace(now: float, nr_accesses: int, start: int = BUFFER_START) -> list[str]:
    lines = []
    for n in range(10):
        stamp = f"{now - 3 + 0.1 * n:.6f}"
        lines.append(
            f"kdamond.0-77 [000] ..... {stamp}: damon_aggregated: target_id=0 nr_regions=1 "
            f"{start}-{start + SIZE}: {nr_accesses} {n}"
        )
    return lines


def test_tracefs_check(tmp_path, registry):
    kernel = FakeKernel(tmp_path)
    result = check_tracefs_recording(
        kernel.fs,
        FakeTarget(kernel, trace_lines=trace(100.0, 7)),
        registry=registry,
        sleep=no_sleep,
    )
    assert result.status == "pass", result
    assert result.details["nr_events"] == 10 and result.details["hot_events_in_buffer"] == 10
    assert not kernel.host(kernel.instance()).exists()  # instance removed
    assert kernel.nr_kdamonds() == 0


@pytest.mark.parametrize(
    ("lines", "fragment"),
    [
        ([], "no damon_aggregated events"),
        (trace(100.0, 0), "no event shows the touched buffer"),
        (trace(5000.0, 7), "not near the target's CLOCK_MONOTONIC"),
        (list(reversed(trace(100.0, 7))), "not in time order"),
    ],
)
def test_tracefs_check_failures(tmp_path, registry, lines, fragment):
    kernel = FakeKernel(tmp_path)
    result = check_tracefs_recording(
        kernel.fs, FakeTarget(kernel, trace_lines=lines), registry=registry, sleep=no_sleep
    )
    assert result.status == "fail" and fragment in result.message, result


def test_tracefs_check_skips_without_tracefs(tmp_path, registry):
    kernel = FakeKernel(tmp_path, tracefs=False)
    result = check_tracefs_recording(kernel.fs, FakeTarget(kernel), registry=registry)
    assert result.status == "skip"


def test_run_selfchecks_reports_errors_as_failures(tmp_path, registry):
    kernel = FakeKernel(tmp_path, tried_oracle=oracle(5))
    kernel.seed_running_kdamond(pid=77)  # busy: every check must fail cleanly
    results = run_selfchecks(kernel.fs, FakeTarget(kernel), registry=registry, sleep=no_sleep)
    assert [r.status for r in results] == ["fail", "fail", "fail"]
    assert all("DamonBusyError" in r.message for r in results)
    assert kernel.state(0) == "on"


@pytest.mark.parametrize("flush", ["flush", "noflush"])
def test_toucher_script_runs_and_reports_its_buffer(tmp_path, flush):
    info = tmp_path / "toucher.info"
    size = 1 << 20
    subprocess.run(
        [sys.executable, "-c", _TOUCHER, str(size), "0.3", str(info), flush],
        check=True,
        timeout=60,
    )
    pid, start, end = (int(x) for x in info.read_text().split())
    assert pid > 0 and end - start == size and start % 4096 == 0
