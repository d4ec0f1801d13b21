"""The batched DAMON controller on the real kernel of a guest: budgets and safety.

The unit tests count round trips against the fake kernel; these check that the
real kernel agrees with the batching (a ``nr_*`` write creates the directories
later writes of the same batch use, ``on`` is readable at once, ``off`` returns
after the kdamond stopped so ``nr_kdamonds`` 0 in the same batch is accepted,
a failing ``on`` stops the batch) and that the refusals still hold.  Slow
(a fast-started TCG guest, about a minute).  Skipped, saying why, only when
QEMU is missing or the image is not cached and this is not root.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from damon_eval.damon.controller import DamonController, OwnershipRegistry, build_kdamond
from damon_eval.damon.errors import DamonBusyError, DamonError
from damon_eval.damon.model import Context, Filter, Kdamond, Scheme, Target
from damon_eval.damon.schemes import parse_schemes
from damon_eval.damon.tracing import TraceInstance
from damon_eval.fs import FileSystem, Op, Write

pytestmark = pytest.mark.guest

ACCEL = os.environ.get("DAMON_EVAL_TEST_ACCEL", "auto")
ADMIN = "/sys/kernel/mm/damon/admin"
KD0 = f"{ADMIN}/kdamonds/0"
NR_KDAMONDS = f"{ADMIN}/kdamonds/nr_kdamonds"


class CountingFs(FileSystem):
    def __init__(self, inner: FileSystem):
        self.inner = inner
        self.description = inner.description
        self.batches: list[list[Op]] = []

    def execute(self, ops: Sequence[Op]) -> list[Any]:
        self.batches.append(list(ops))
        return self.inner.execute(ops)

    @property
    def round_trips(self) -> int:
        return len(self.batches)


@pytest.fixture(scope="module")
def guest() -> Iterator[Any]:
    missing = [t for t in ("qemu-system-x86_64", "qemu-img") if not shutil.which(t)]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (apt-get install qemu-system-x86 qemu-utils)")
    from damon_eval.guest import Guest, cached_image, ensure_image, load_spec

    if cached_image(load_spec()) is None and os.geteuid() != 0:
        pytest.skip("the guest image is not cached and building it needs root")
    with Guest.start(ensure_image(progress=False), accel=ACCEL, fast_start=True) as started:
        yield started


@pytest.fixture
def clean(guest) -> Iterator[None]:
    """Every test starts and ends with no kdamond and no trace instance."""
    yield
    guest.run(
        f"for s in {ADMIN}/kdamonds/*/state; do echo off > $s 2>/dev/null; done; "
        f"echo 0 > {NR_KDAMONDS}; rmdir /sys/kernel/tracing/instances/damon-eval 2>/dev/null; "
        "pkill -x sleep; true",
        timeout_s=30,
    )


def sleeper(guest) -> int:
    cmd = "nohup setsid sleep 3600 </dev/null >/dev/null 2>&1 & echo $!"
    return int(guest.run(cmd, timeout_s=30).stdout.split()[-1])


def controller(fs: FileSystem, tmp_path: Path) -> DamonController:
    return DamonController(fs, registry=OwnershipRegistry(tmp_path / "owned.json"))


def test_vaddr_start_and_stop_budget_on_the_real_kernel(guest, clean, tmp_path):
    pid = sleeper(guest)
    fs = CountingFs(guest.fs)
    kdamond, schemes = build_kdamond(
        "vaddr", [Target(pid)], schemes=parse_schemes("4K null null 5 7s null pageout")
    )
    session = controller(fs, tmp_path).start(kdamond, schemes=schemes)
    assert fs.round_trips <= 3
    comm = guest.run(f"cat /proc/{session.pid}/comm", timeout_s=30).stdout.strip()
    assert comm == "kdamond.0"
    assert guest.fs.read(f"{KD0}/contexts/0/schemes/0/access_pattern/age/min") == "70"
    assert session.handle.boot_id == guest.fs.read("/proc/sys/kernel/random/boot_id")
    fs.batches.clear()
    assert session.stop() is True
    assert fs.round_trips <= 2
    assert guest.fs.read(NR_KDAMONDS) == "0"
    assert guest.run(f"test -e /proc/{session.pid}", timeout_s=30).exit_status != 0


def test_run_set_up_with_paddr_and_trace_instance(guest, clean, tmp_path):
    from damon_eval.config.configuration import load_configuration
    from damon_eval.measure.execute import damon_for_run

    fs = CountingFs(guest.fs)
    with damon_for_run(
        SimpleNamespace(fs=fs), load_configuration("prec"), 1, tmp_path / "owned.json"
    ) as (session, instance):
        assert fs.round_trips <= 4
        assert session is not None and instance is not None
        assert guest.fs.read(f"{KD0}/contexts/0/operations") == "paddr"
        enable = f"{instance.path}/events/damon/damon_aggregated/enable"
        assert guest.fs.read(enable) == "1"
        assert "[mono]" in guest.fs.read(f"{instance.path}/trace_clock").split()
        fs.batches.clear()
    assert fs.round_trips <= 3
    assert guest.fs.read(NR_KDAMONDS) == "0"
    assert not guest.fs.exists(instance.path)


def test_foreign_kdamond_is_refused_without_a_write(guest, clean, tmp_path):
    pid = sleeper(guest)
    guest.run(
        f"echo 1 > {NR_KDAMONDS} && echo 1 > {KD0}/contexts/nr_contexts && "
        f"echo 1 > {KD0}/contexts/0/targets/nr_targets && "
        f"echo {pid} > {KD0}/contexts/0/targets/0/pid_target && echo on > {KD0}/state",
        timeout_s=30,
    )
    foreign_pid = guest.fs.read(f"{KD0}/pid")
    fs = CountingFs(guest.fs)
    with pytest.raises(DamonBusyError, match=rf"pid {foreign_pid}.*Nothing was changed"):
        controller(fs, tmp_path).start(build_kdamond("vaddr", [Target(pid)])[0])
    assert not any(isinstance(op, Write) for batch in fs.batches for op in batch)
    assert fs.round_trips <= 2
    assert guest.fs.read(f"{KD0}/state") == "on" and guest.fs.read(f"{KD0}/pid") == foreign_pid


def test_on_refused_by_the_kernel_stops_the_batch(guest, clean, tmp_path):
    gone = sleeper(guest)
    guest.run(f"kill {gone}; while kill -0 {gone} 2>/dev/null; do sleep 0.1; done", 30)
    fs = CountingFs(guest.fs)
    # bash in the guest keeps the kernel's errno: EINVAL, explained with the pid
    with pytest.raises(
        DamonError, match=rf"refused to turn .*kdamonds/0 on .*Invalid argument.*\[{gone}\]"
    ):
        controller(fs, tmp_path).start(build_kdamond("vaddr", [Target(gone)])[0])
    # stage, 'on' (refused), and one batch removing the staged directory
    assert fs.round_trips == 4
    assert guest.fs.read(f"{ADMIN}/kdamonds/nr_kdamonds") == "0"  # left as it was


def test_target_exit_then_stop(guest, clean, tmp_path):
    pid = sleeper(guest)
    session = controller(guest.fs, tmp_path).start(build_kdamond("vaddr", [Target(pid)])[0])
    guest.run(f"kill {pid}", timeout_s=30)
    deadline = time.monotonic() + 60
    while guest.fs.read(f"{KD0}/state") != "off":  # the kdamond notices within an update
        assert time.monotonic() < deadline, "the kdamond kept running after its target exited"
        time.sleep(1)
    fs = CountingFs(guest.fs)
    session.controller.fs = fs
    session.backend.fs = fs
    assert session.stop() is False  # no 'off' written: it had stopped by itself
    assert fs.round_trips <= 2
    assert not any(op == Write(f"{KD0}/state", "off") for batch in fs.batches for op in batch)
    assert guest.fs.read(NR_KDAMONDS) == "0"


def test_stale_trace_instance_is_replaced(guest, clean):
    guest.run("mkdir /sys/kernel/tracing/instances/damon-eval", timeout_s=30)
    fs = CountingFs(guest.fs)
    instance = TraceInstance(fs, "/sys/kernel/tracing")
    instance.create()
    assert fs.round_trips == 2
    fs.batches.clear()
    instance.remove()
    assert fs.round_trips == 1 and not guest.fs.exists(instance.path)


def test_filters_on_the_real_kernel(guest, clean, tmp_path):
    pid = sleeper(guest)
    scheme = Scheme(action="stat", filters=(Filter("anon", matching=True),))
    kdamond = Kdamond(contexts=(Context("vaddr", targets=(Target(pid),), schemes=(scheme,)),))
    fs = CountingFs(guest.fs)
    session = controller(fs, tmp_path).start(kdamond)
    assert fs.round_trips <= 4
    listing = guest.fs.listdir(f"{KD0}/contexts/0/schemes/0")
    filters_dir = "ops_filters" if "core_filters" in listing else "filters"
    assert guest.fs.read(f"{KD0}/contexts/0/schemes/0/{filters_dir}/0/type") == "anon"
    assert guest.fs.read(f"{KD0}/contexts/0/schemes/0/{filters_dir}/0/matching") == "Y"
    session.stop()
