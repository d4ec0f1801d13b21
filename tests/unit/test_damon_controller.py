"""The controller: sessions always end with DAMON off, signals included; ownership."""

from __future__ import annotations

import os
import signal

import pytest
from fakekernel import ADMIN, DEBUGFS, FakeKernel

from damon_eval.damon.controller import (
    DamonController,
    OwnershipRegistry,
    SessionInterrupted,
    build_kdamond,
)
from damon_eval.damon.errors import DamonBusyError
from damon_eval.damon.model import MonitoringAttrs, Target
from damon_eval.damon.schemes import parse_schemes

KD0 = f"{ADMIN}/kdamonds/0"


@pytest.fixture
def kernel(tmp_path) -> FakeKernel:
    return FakeKernel(tmp_path / "machine")


@pytest.fixture
def controller(kernel, tmp_path) -> DamonController:
    return DamonController(kernel.fs, registry=OwnershipRegistry(tmp_path / "owned.json"))


def prcl_kdamond(pid: int = 4321):
    return build_kdamond(
        "vaddr", [Target(pid)], schemes=parse_schemes("4K null null 5 7s null pageout", "prcl")
    )


def off_writes(kernel: FakeKernel) -> int:
    return sum(1 for path, value in kernel.writes if path == f"{KD0}/state" and value == "off")


def stopped_and_removed(kernel: FakeKernel) -> bool:
    """'off' was written once, then the kdamond directory we created was removed."""
    return off_writes(kernel) == 1 and kernel.nr_kdamonds() == 0


def test_session_turns_off_on_normal_exit(kernel, controller):
    kdamond, schemes = prcl_kdamond()
    with controller.session(kdamond, schemes=schemes) as session:
        assert kernel.state(0) == "on"
        assert session.is_running()
        record = session.to_dict()
        assert record["schemes"][0]["raw"]["access_pattern"]["age_min"] == 70
        assert record["schemes"][0]["source"] == "prcl:1"
    assert stopped_and_removed(kernel)
    assert not session.is_running()


def test_session_turns_off_on_exception(kernel, controller):
    with (
        pytest.raises(RuntimeError, match="workload failed"),
        controller.session(prcl_kdamond()[0]),
    ):
        assert kernel.state(0) == "on"
        raise RuntimeError("workload failed")
    assert stopped_and_removed(kernel)


def test_sigterm_during_a_session_turns_damon_off(kernel, controller):
    previous = signal.getsignal(signal.SIGTERM)
    reached_after_kill = False
    with pytest.raises(SessionInterrupted) as info, controller.session(prcl_kdamond()[0]):
        assert kernel.state(0) == "on"
        os.kill(os.getpid(), signal.SIGTERM)
        reached_after_kill = True  # pragma: no cover - the handler raises first
    assert not reached_after_kill
    assert info.value.signum == signal.SIGTERM
    assert stopped_and_removed(kernel)
    assert signal.getsignal(signal.SIGTERM) is previous  # handlers restored


def test_sigint_is_handled_the_same_way(kernel, controller):
    with pytest.raises(KeyboardInterrupt), controller.session(prcl_kdamond()[0]):
        os.kill(os.getpid(), signal.SIGINT)
    assert stopped_and_removed(kernel)


def test_signal_during_start_is_held_until_the_handle_exists(kernel, controller):
    original = kernel._hook

    def hook(path: str, value: str) -> None:
        original(path, value)
        if path == f"{KD0}/state" and value == "on":
            os.kill(os.getpid(), signal.SIGTERM)  # arrives right after 'on'

    kernel.fs.write_hook = hook
    with pytest.raises(SessionInterrupted), controller.session(prcl_kdamond()[0]):
        pytest.fail("the block must not run after a signal during start")
    assert stopped_and_removed(kernel)


def test_busy_refusal_leaves_the_foreign_kdamond_running(kernel, controller):
    kernel.seed_running_kdamond(pid=77)
    with pytest.raises(DamonBusyError, match=r"pid 77"), controller.session(prcl_kdamond()[0]):
        pytest.fail("must not start")
    assert kernel.state(0) == "on" and kernel.read(f"{KD0}/pid") == "77"
    assert kernel.nr_kdamonds() == 1
    assert off_writes(kernel) == 0


def test_target_exit_then_stop_writes_nothing(kernel, controller):
    with controller.session(prcl_kdamond()[0]) as session:
        kernel.stop_kdamond(0)
        assert session.stop() is False
        assert session.stop() is False
    assert off_writes(kernel) == 0 and kernel.nr_kdamonds() == 0


def test_directory_is_kept_when_the_slot_is_not_ours_any_more(kernel, controller):
    with controller.session(prcl_kdamond()[0]):
        kernel.stop_kdamond(0)
        kernel.fs.write(f"{KD0}/state", "on")  # someone else restarted slot 0
    assert kernel.state(0) == "on" and kernel.nr_kdamonds() == 1 and off_writes(kernel) == 0


def test_status_marks_our_kdamond(kernel, controller, tmp_path):
    other_process = DamonController(kernel.fs, registry=OwnershipRegistry(tmp_path / "owned.json"))
    with controller.session(prcl_kdamond()[0]) as session:
        (status,) = other_process.status()
        assert status.ours and status.pid == session.pid and status.operations == "vaddr"
    assert other_process.status() == []
    assert OwnershipRegistry(tmp_path / "owned.json").entries() == []


def test_status_does_not_claim_a_foreign_kdamond(kernel, controller):
    kernel.seed_running_kdamond(pid=77)
    (status,) = controller.status()
    assert status.running and not status.ours


def test_registry_survives_a_broken_file(tmp_path):
    path = tmp_path / "owned.json"
    path.write_text("{not json")
    assert OwnershipRegistry(path).entries() == []


def test_debugfs_session(tmp_path):
    kernel = FakeKernel(tmp_path / "m", sysfs=None, debugfs="mainline")
    controller = DamonController(kernel.fs, registry=OwnershipRegistry(tmp_path / "o.json"))
    kdamond, _ = prcl_kdamond()
    with pytest.raises(SessionInterrupted), controller.session(kdamond) as session:
        assert session.backend.interface == "debugfs"
        assert controller.status()[0].ours
        os.kill(os.getpid(), signal.SIGTERM)
    assert kernel.read(f"{DEBUGFS}/monitor_on") == "off"


def test_build_kdamond_keeps_both_forms():
    attrs = MonitoringAttrs(sample_us=1000, aggr_us=20000)
    kdamond, resolved = build_kdamond(
        "vaddr", [Target(1)], attrs=attrs, schemes=parse_schemes("4K max min 5 7s max pageout")
    )
    assert kdamond.context.attrs == attrs
    assert kdamond.context.schemes[0] == resolved[0].raw
    assert resolved[0].raw.access_pattern.age_min == 350
