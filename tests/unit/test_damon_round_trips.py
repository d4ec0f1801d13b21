"""Round-trip budgets of the DAMON controller, counted against the fake kernel.

On a guest every ``FileSystem.execute`` is one SSH command (~0.3-0.5 s under
TCG), so the number of batches is the controller's cost.  Counting them is
deterministic; these tests enforce the budgets:

* start (detection, busy check, staging, read-back, ``on``, pid): <= 3,
* stop (ownership check, ``off``, removal of our kdamond directory): <= 2,
* trace instance: create 1 (2 with a stale instance to replace), remove 1,
* a measured run's DAMON set-up (``damon_for_run``), paddr with a trace
  instance: probe (with /proc/iomem and tracefs) + instance + start <= 4 before
  the workload and <= 3 after.

Every test also checks that the safety behaviour did not go away with the
batching (nothing written on refusal, read-back checked before ``on``, ...).
"""

from __future__ import annotations

import errno
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from fakekernel import ADMIN, TRACEFS, FakeKernel

from damon_eval.config.configuration import load_configuration
from damon_eval.damon.controller import DamonController, OwnershipRegistry, build_kdamond
from damon_eval.damon.errors import (
    DamonBusyError,
    DamonError,
    DamonReadbackError,
    DamonUnsupportedError,
)
from damon_eval.damon.iomem import IOMEM_PATH, system_ram_target
from damon_eval.damon.model import Context, Filter, Kdamond, Scheme, Target
from damon_eval.damon.probe import MAX_PROBE_AGE_S
from damon_eval.damon.schemes import parse_schemes
from damon_eval.damon.tracing import TraceInstance
from damon_eval.errors import FsError
from damon_eval.fs import FileSystem, Op, Write
from damon_eval.measure.execute import damon_for_run

KD0 = f"{ADMIN}/kdamonds/0"
PRCL = "4K null null 5 7s null pageout"


@dataclass
class CountingFs(FileSystem):
    """Wraps a FileSystem and records every batch (one batch = one round trip)."""

    inner: FileSystem
    batches: list[list[Op]] = field(default_factory=list)

    @property
    def description(self) -> str:  # type: ignore[override]
        return self.inner.description

    @property
    def round_trips(self) -> int:
        return len(self.batches)

    def execute(self, ops: Sequence[Op]) -> list[Any]:
        self.batches.append(list(ops))
        return self.inner.execute(ops)

    def reset(self) -> None:
        self.batches.clear()


@pytest.fixture
def kernel(tmp_path) -> FakeKernel:
    return FakeKernel(tmp_path / "machine")


@pytest.fixture
def fs(kernel) -> CountingFs:
    return CountingFs(kernel.fs)


def controller_on(fs: FileSystem, tmp_path) -> DamonController:
    return DamonController(fs, registry=OwnershipRegistry(tmp_path / "owned.json"))


def vaddr(pid: int = 4321, schemes: str = PRCL):
    return build_kdamond("vaddr", [Target(pid)], schemes=parse_schemes(schemes) if schemes else ())


def test_start_and_stop_of_a_vaddr_context(kernel, fs, tmp_path):
    controller = controller_on(fs, tmp_path)  # the interface is not detected yet
    kdamond, schemes = vaddr()
    session = controller.start(kdamond, schemes=schemes)
    assert fs.round_trips <= 3
    assert session.pid == int(kernel.read(f"{KD0}/pid")) and kernel.state(0) == "on"
    assert session.handle.boot_id == kernel.boot_id
    # The first batch only reads; the last starts the kdamond and reads state and pid.
    assert not any(isinstance(op, Write) for op in fs.batches[0])
    assert fs.batches[-1][0] == Write(f"{KD0}/state", "on")
    fs.reset()
    assert session.stop() is True
    assert fs.round_trips <= 2
    assert (f"{KD0}/state", "off") in kernel.writes
    assert kernel.nr_kdamonds() == 0  # our directory is gone
    fs.reset()
    assert session.stop() is False and fs.round_trips == 0  # idempotent, free


def test_session_context_manager_budget(kernel, fs, tmp_path):
    controller = controller_on(fs, tmp_path)
    kdamond, schemes = vaddr()
    with controller.session(kdamond, schemes=schemes):
        assert fs.round_trips <= 3
        fs.reset()
    assert fs.round_trips <= 2
    assert kernel.nr_kdamonds() == 0


def test_stop_after_the_target_exited_writes_no_off(kernel, fs, tmp_path):
    session = controller_on(fs, tmp_path).start(vaddr()[0])
    kernel.stop_kdamond(0)
    fs.reset()
    assert session.stop() is False
    assert fs.round_trips <= 2
    assert not any(p == f"{KD0}/state" and v == "off" for p, v in kernel.writes)
    assert kernel.nr_kdamonds() == 0


def test_stop_leaves_a_restarted_foreign_kdamond_in_one_round_trip(kernel, fs, tmp_path):
    session = controller_on(fs, tmp_path).start(vaddr()[0])
    kernel.stop_kdamond(0)
    kernel.fs.write(f"{KD0}/state", "on")  # someone else's kdamond in our slot now
    fs.reset()
    assert session.stop() is False
    assert fs.round_trips == 1
    assert kernel.state(0) == "on" and kernel.nr_kdamonds() == 1


def test_off_that_fails_because_the_kdamond_just_stopped(kernel, tmp_path):
    @dataclass
    class TargetExitsFirst(CountingFs):
        def execute(self, ops: Sequence[Op]) -> list[Any]:
            if ops and ops[0] == Write(f"{KD0}/state", "off"):
                kernel.stop_kdamond(0)  # the target exits between our check and 'off'
            return super().execute(ops)

    session = controller_on(TargetExitsFirst(kernel.fs), tmp_path).start(vaddr()[0])
    assert session.stop() is False  # 'off' got EINVAL: the kdamond had stopped by itself
    assert kernel.nr_kdamonds() == 0


def test_a_failing_directory_removal_only_warns(kernel, fs, tmp_path, caplog):
    session = controller_on(fs, tmp_path).start(vaddr()[0])
    original = kernel._hook

    def hook(path: str, value: str) -> None:
        if path == f"{ADMIN}/kdamonds/nr_kdamonds" and value == "0":
            raise OSError(errno.EBUSY, "Device or resource busy")
        original(path, value)

    kernel.fs.write_hook = hook
    assert session.stop() is True
    assert kernel.state(0) == "off"
    assert "left kdamond 0's directory in place" in caplog.text


def test_busy_refusal_costs_one_read_only_batch_and_writes_nothing(kernel, fs, tmp_path):
    kernel.seed_running_kdamond(pid=77)
    before = kernel.snapshot()
    with pytest.raises(DamonBusyError, match=r"pid 77.*Nothing was changed"):
        controller_on(fs, tmp_path).start(vaddr()[0])
    assert kernel.writes == [] and kernel.snapshot() == before
    assert all(not isinstance(op, Write) for batch in fs.batches for op in batch)
    assert fs.round_trips <= 2  # the probe, and the running kdamond's details


def test_more_kdamonds_than_the_probe_reads_are_still_checked(kernel, fs, tmp_path):
    for _ in range(5):
        kernel.seed_idle_kdamond()
    kernel.seed_running_kdamond(pid=99)  # kdamond 5: beyond the speculative reads
    with pytest.raises(DamonBusyError, match=r"kdamond 5 .*pid 99"):
        controller_on(fs, tmp_path).start(vaddr()[0])
    assert kernel.writes == []


def test_readback_mismatch_is_refused_before_on(tmp_path):
    kernel = FakeKernel(tmp_path, readback_overrides={"nr_regions/max": "500"})
    fs = CountingFs(kernel.fs)
    with pytest.raises(DamonReadbackError, match=r"wrote '1000'.*reads back '500'"):
        controller_on(fs, tmp_path).start(vaddr()[0])
    assert kernel.state(0) == "off"
    assert ("/sys/kernel/mm/damon/admin/kdamonds/0/state", "on") not in kernel.writes
    assert fs.round_trips == 2  # probe, staging: never the 'on' batch


def test_unavailable_operations_refused_before_on(tmp_path):
    kernel = FakeKernel(tmp_path, avail_operations=("paddr",))
    with pytest.raises(DamonUnsupportedError, match=r"'vaddr' is not available"):
        controller_on(CountingFs(kernel.fs), tmp_path).start(vaddr()[0])
    assert (f"{KD0}/state", "on") not in kernel.writes


def test_ebusy_on_the_staging_batch_changes_nothing(kernel, fs, tmp_path):
    controller = controller_on(fs, tmp_path)
    probe = controller.probe()  # says: no kdamond
    kernel.seed_running_kdamond(pid=55)  # one starts right after the probe
    with pytest.raises(DamonBusyError, match=r"in use"):
        controller.start(vaddr()[0], probe=probe)
    assert kernel.state(0) == "on" and kernel.read(f"{KD0}/pid") == "55"
    assert [p for p, _ in kernel.writes] == [f"{ADMIN}/kdamonds/nr_kdamonds"]  # refused


def test_a_stale_probe_is_not_trusted(kernel, fs, tmp_path, monkeypatch):
    controller = controller_on(fs, tmp_path)
    probe = controller.probe()
    kernel.seed_running_kdamond(pid=55)
    monkeypatch.setattr(
        type(probe), "age_s", property(lambda self: MAX_PROBE_AGE_S + 1), raising=True
    )
    with pytest.raises(DamonBusyError, match=r"pid 55.*Nothing was changed"):
        controller.start(vaddr()[0], probe=probe)
    assert kernel.writes == []


def test_a_probe_of_another_file_system_is_not_trusted(kernel, tmp_path):
    other = FakeKernel(tmp_path / "other")
    probe = controller_on(other.fs, tmp_path).probe()
    kernel.seed_running_kdamond(pid=55)
    with pytest.raises(DamonBusyError, match=r"pid 55"):
        controller_on(kernel.fs, tmp_path).start(vaddr()[0], probe=probe)


def test_kernel_rejecting_on_stops_the_batch(tmp_path):
    kernel = FakeKernel(tmp_path, live_pids={1})
    fs = CountingFs(kernel.fs)
    with pytest.raises(DamonError, match=r"refused to turn .* on .*target pids \[4321\]"):
        controller_on(fs, tmp_path).start(vaddr(4321)[0])
    # stage, 'on' (refused), then one batch removing the staged directory
    assert fs.round_trips == 4
    assert kernel.read(f"{ADMIN}/kdamonds/nr_kdamonds") == "0"


def filtered() -> Kdamond:
    scheme = Scheme(
        action="pageout",
        filters=(Filter("anon", allow=False), Filter("addr", addr_start=0, addr_end=4096)),
    )
    return Kdamond(contexts=(Context("vaddr", targets=(Target(4321),), schemes=(scheme,)),))


def test_filters_cost_one_more_batch_only_until_the_layout_is_known(kernel, fs, tmp_path):
    controller = controller_on(fs, tmp_path)
    session = controller.start(filtered())
    assert fs.round_trips <= 4
    scheme = f"{KD0}/contexts/0/schemes/0"
    assert kernel.read(f"{scheme}/ops_filters/0/type") == "anon"
    assert kernel.read(f"{scheme}/core_filters/0/type") == "addr"
    session.stop()
    fs.reset()
    controller.start(filtered())
    assert fs.round_trips <= 3


def test_paddr_with_trace_instance_budget(kernel, fs, tmp_path):
    controller = controller_on(fs, tmp_path)
    probe = controller.probe(reads=(IOMEM_PATH,))
    assert fs.round_trips == 1
    target = system_ram_target(fs, text=probe.file(IOMEM_PATH))
    assert target.regions[0].start == 0x100000000  # the largest range
    assert probe.tracefs == TRACEFS
    assert probe.tracepoints == ("damon_aggregated", "damos_before_apply")
    assert fs.round_trips == 1
    fs.reset()
    instance = TraceInstance(fs, probe.tracefs)
    instance.create()
    assert fs.round_trips == 1
    assert kernel.read(f"{kernel.instance()}/events/damon/damon_aggregated/enable") == "1"
    fs.reset()
    kdamond, _ = build_kdamond("paddr", [target])
    session = controller.start(kdamond, probe=probe)
    assert fs.round_trips <= 2  # the probe is reused
    fs.reset()
    session.stop()
    instance.remove()
    assert fs.round_trips <= 3
    assert not kernel.host(kernel.instance()).exists() and kernel.nr_kdamonds() == 0


def test_stale_trace_instance_is_replaced_within_the_budget(kernel, fs):
    kernel.fs.mkdir(kernel.instance())
    instance = TraceInstance(fs, TRACEFS)
    instance.create()
    assert fs.round_trips <= 2 and instance.created
    fs.reset()
    instance.remove()
    assert fs.round_trips == 1


def test_missing_tracepoint_with_a_stale_instance_leaves_it(kernel, fs):
    kernel.fs.mkdir(kernel.instance())
    with pytest.raises(DamonUnsupportedError, match=r"damon:damon_nope not available"):
        TraceInstance(fs, TRACEFS, events=("damon_aggregated", "damon_nope")).create()
    assert fs.round_trips == 1 and kernel.host(kernel.instance()).exists()


def test_missing_tracepoint_costs_one_more_batch_and_leaves_nothing(kernel, fs):
    with pytest.raises(DamonUnsupportedError, match=r"damon:damon_nope not available"):
        TraceInstance(fs, TRACEFS, events=("damon_nope",)).create()
    assert fs.round_trips == 2 and not kernel.host(kernel.instance()).exists()


def test_trace_instance_configuration_failure_removes_it(kernel, fs):
    instance = TraceInstance(fs, TRACEFS, clock="no_such_clock")
    with pytest.raises(DamonError, match=r"trace_clock"):
        instance.create()
    assert not kernel.host(kernel.instance()).exists() and not instance.created


def test_trace_instance_needs_tracefs(tmp_path):
    kernel = FakeKernel(tmp_path, tracefs=False)
    probe = controller_on(kernel.fs, tmp_path).probe()
    assert probe.tracefs is None
    with pytest.raises(DamonUnsupportedError, match=r"no tracefs mounted"):
        TraceInstance(kernel.fs, probe.tracefs).create()


def test_probe_file_refuses_paths_it_did_not_read(kernel, tmp_path):
    probe = controller_on(kernel.fs, tmp_path).probe(reads=("/proc/nope",))
    assert probe.file("/proc/nope") is None
    with pytest.raises(ValueError, match=r"/proc/iomem was not read"):
        probe.file(IOMEM_PATH)


@pytest.mark.parametrize(("name", "before", "after"), [("prec", 4, 3), ("prcl", 3, 2)])
def test_damon_for_run_budget(kernel, fs, tmp_path, name, before, after):
    configuration = load_configuration(name)
    guest = SimpleNamespace(fs=fs)
    with damon_for_run(guest, configuration, 4321, tmp_path / "owned.json") as (
        session,
        instance,
    ):
        assert fs.round_trips <= before
        assert session is not None and kernel.state(0) == "on"
        assert (instance is not None) == configuration.records
        fs.reset()
    assert fs.round_trips <= after
    assert kernel.nr_kdamonds() == 0
    assert not kernel.host(kernel.instance()).exists()


def test_fs_error_reports_the_failing_operation(kernel):
    with pytest.raises(FsError) as info:
        kernel.fs.execute([Write(f"{ADMIN}/kdamonds/nr_kdamonds", "0"), Write("/nope", "1")])
    assert info.value.index == 1 and info.value.completed == (None,)


def test_debugfs_start_and_stop_budget(tmp_path):
    kernel = FakeKernel(tmp_path, sysfs=None, debugfs="mainline")
    fs = CountingFs(kernel.fs)
    controller = controller_on(fs, tmp_path)
    kdamond, schemes = vaddr()
    session = controller.start(kdamond, schemes=schemes)
    # probe (detection, files, state, boot id); attrs + targets; schemes; on.
    assert fs.round_trips <= 4
    assert kernel.read("/sys/kernel/debug/damon/monitor_on") == "on"
    assert session.handle.boot_id == kernel.boot_id and session.pid > 0
    fs.reset()
    assert session.stop() is True
    assert fs.round_trips <= 2
