"""The legacy debugfs back end against the fake kernel (seed-era and mainline variants)."""

from __future__ import annotations

import pytest
from fakekernel import DEBUGFS, FakeKernel

from damon_eval.damon.backend import DebugfsRecord
from damon_eval.damon.controller import build_kdamond
from damon_eval.damon.debugfs import DebugfsBackend, scheme_fields
from damon_eval.damon.detect import open_backend
from damon_eval.damon.errors import (
    DamonBusyError,
    DamonError,
    DamonUnsupportedError,
)
from damon_eval.damon.model import (
    Context,
    Filter,
    Kdamond,
    MonitoringAttrs,
    Quotas,
    Region,
    Scheme,
    Target,
)
from damon_eval.damon.schemes import parse_schemes
from damon_eval.fs import Write

ETHP_TEXT = "null null 5 null null null hugepage\n2M null null null 13s null nohugepage"


def debugfs_backend(kernel: FakeKernel) -> DebugfsBackend:
    backend = open_backend(kernel.fs)
    assert isinstance(backend, DebugfsBackend)
    return backend


def ethp_kdamond(pid: int = 4321) -> Kdamond:
    return build_kdamond("vaddr", [Target(pid)], schemes=parse_schemes(ETHP_TEXT))[0]


def test_seed_kernel_cycle_with_7_field_schemes(tmp_path):
    kernel = FakeKernel(tmp_path, sysfs=None, debugfs="seed")
    backend = debugfs_backend(kernel)
    handle = backend.start(ethp_kdamond(), record=DebugfsRecord("/tmp/damon.data", 4096))
    assert kernel.read(f"{DEBUGFS}/attrs") == "5000 100000 1000000 10 1000"
    assert kernel.read(f"{DEBUGFS}/pids") == "4321"
    assert kernel.read(f"{DEBUGFS}/record") == "4096 /tmp/damon.data"
    assert kernel.read(f"{DEBUGFS}/monitor_on") == "on"
    assert backend.schemes_form == 7
    # 32-bit sizes: an unbounded max is written as 0, the era's "no limit".
    rows = kernel.read(f"{DEBUGFS}/schemes").splitlines()
    assert rows == ["0 0 1 20 0 4294967295 3 0 0", "2097152 0 0 20 130 4294967295 4 0 0"]
    assert handle.pid == 0  # the seed kernels do not show the kdamond's pid
    stats = backend.scheme_stats(handle)
    assert len(stats) == 2 and stats[0].nr_tried == 0
    assert backend.is_running(handle)
    assert backend.turn_off(handle) is True
    assert kernel.read(f"{DEBUGFS}/monitor_on") == "off"


def test_seed_kernel_leftover_recording_is_disabled(tmp_path):
    kernel = FakeKernel(tmp_path, sysfs=None, debugfs="seed")
    backend = debugfs_backend(kernel)
    assert kernel.read(f"{DEBUGFS}/record").startswith("1048576")
    backend.start(ethp_kdamond())
    assert kernel.read(f"{DEBUGFS}/record").split()[0] == "0"


def test_mainline_debugfs_cycle_with_18_field_schemes(tmp_path):
    kernel = FakeKernel(tmp_path, sysfs=None, debugfs="mainline")
    backend = debugfs_backend(kernel)
    kdamond = build_kdamond(
        "vaddr", [Target(11), Target(12)], schemes=parse_schemes("4K null null 5 7s null pageout")
    )[0]
    handle = backend.start(kdamond)
    assert kernel.read(f"{DEBUGFS}/target_ids") == "11 12"
    assert backend.schemes_form == 18
    (row,) = kernel.read(f"{DEBUGFS}/schemes").splitlines()
    numbers = [int(x) for x in row.split()]
    assert numbers[:7] == [4096, 2**64 - 1, 0, 1, 70, 2**32 - 1, 2]
    assert len(numbers) == 23  # 18 parameters and 5 statistics
    assert handle.pid == int(kernel.read(f"{DEBUGFS}/kdamond_pid"))
    assert backend.kdamonds()[0].pid == handle.pid
    with pytest.raises(DamonUnsupportedError, match=r"EBUSY while monitor_on is on"):
        backend.commit(handle, kdamond)
    with pytest.raises(DamonUnsupportedError, match=r"sysfs"):
        backend.tried_regions(handle)
    assert backend.turn_off(handle) is True


def test_schemes_form_is_detected_by_reading_back(tmp_path):
    # A kernel with target_ids but the seed's 7-field parser: the 18-field write
    # leaves the wrong number of schemes, so the back end falls back to 7 fields.
    kernel = FakeKernel(tmp_path, sysfs=None, debugfs="mainline", debugfs_schemes_form=7)
    backend = debugfs_backend(kernel)
    backend.start(ethp_kdamond())
    assert backend.schemes_form == 7
    assert len(kernel.read(f"{DEBUGFS}/schemes").splitlines()) == 2


def test_seed_form_cannot_carry_quotas(tmp_path):
    kernel = FakeKernel(tmp_path, sysfs=None, debugfs="seed")
    backend = debugfs_backend(kernel)
    scheme = Scheme("pageout", quotas=Quotas(ms=10, reset_interval_ms=1000))
    kdamond = Kdamond((Context("vaddr", targets=(Target(1),), schemes=(scheme,)),))
    with pytest.raises(DamonError, match=r"quotas and watermarks need 5.16"):
        backend.start(kdamond)


def test_paddr_init_regions_by_index_then_by_id(tmp_path):
    for by_id in (False, True):
        kernel = FakeKernel(tmp_path / str(by_id), sysfs=None, debugfs="mainline")
        kernel.init_regions_by_id = by_id
        backend = debugfs_backend(kernel)
        target = Target(None, (Region(1 << 20, 1 << 30),))
        backend.start(Kdamond((Context("paddr", targets=(target,)),)))
        assert kernel.read(f"{DEBUGFS}/target_ids") == "42"
        expected_key = "42" if by_id else "0"
        assert kernel.read(f"{DEBUGFS}/init_regions") == f"{expected_key} {1 << 20} {1 << 30}"


def test_running_monitor_is_refused_untouched(tmp_path):
    kernel = FakeKernel(tmp_path, sysfs=None, debugfs="mainline")
    kernel.seed_debugfs_running(pid=4242)
    backend = debugfs_backend(kernel)
    with pytest.raises(DamonBusyError, match=r"kdamond pid 4242.*Nothing was changed"):
        backend.start(ethp_kdamond())
    assert kernel.writes == []


def test_ebusy_while_monitoring_is_a_busy_error(tmp_path):
    kernel = FakeKernel(tmp_path, sysfs=None, debugfs="mainline")
    backend = debugfs_backend(kernel)
    backend.start(ethp_kdamond())
    with pytest.raises(DamonBusyError, match=r"Device or resource busy.*DAMON is in use"):
        backend.run([Write(f"{DEBUGFS}/attrs", "1 2 3 4 5")], "writing attrs")
    assert kernel.read(f"{DEBUGFS}/attrs") == "5000 100000 1000000 10 1000"


@pytest.mark.parametrize(
    ("kdamond", "fragment"),
    [
        (Kdamond((Context("fvaddr", targets=(Target(1, (Region(0, 4096),)),)),)), "no fvaddr"),
        (
            Kdamond(
                (
                    Context(
                        "vaddr",
                        targets=(Target(1),),
                        schemes=(Scheme("stat", filters=(Filter("anon"),)),),
                    ),
                )
            ),
            "no DAMOS filters",
        ),
        (
            Kdamond((Context("vaddr", targets=(Target(1),), schemes=(Scheme("lru_prio"),)),)),
            "'lru_prio' has no debugfs number",
        ),
    ],
)
def test_unsupported_requests(tmp_path, kdamond, fragment):
    kernel = FakeKernel(tmp_path, sysfs=None, debugfs="mainline")
    with pytest.raises(DamonUnsupportedError, match=fragment):
        debugfs_backend(kernel).start(kdamond)


def test_seed_kernel_has_no_paddr(tmp_path):
    kernel = FakeKernel(tmp_path, sysfs=None, debugfs="seed")
    backend = debugfs_backend(kernel)
    target = Target(None, (Region(0, 1 << 30),))
    with pytest.raises(DamonUnsupportedError, match=r"init_regions \(Linux 5.16\+\)"):
        backend.start(Kdamond((Context("paddr", targets=(target,)),)))
    features = backend.features()
    assert features.interface == "debugfs" and features.operations == ("vaddr",)
    assert "record" in features.capabilities and "seed-era" in features.notes[0]


def test_scheme_fields_forms():
    (prcl,) = parse_schemes("4K null null 5 7s null pageout")
    raw = prcl.to_raw(MonitoringAttrs())
    assert scheme_fields(raw, 7) == [4096, 2**64 - 1, 0, 1, 70, 2**32 - 1, 2]
    assert scheme_fields(raw, 7, zero_means_unlimited=True)[1] == 0
    assert len(scheme_fields(raw, 18)) == 18


@pytest.mark.parametrize("busy", [False, True])
def test_6_9_renamed_monitor_file_is_driven_and_guarded(tmp_path, busy):
    # Found on a real 6.12 kernel: 6.9+ renames monitor_on to monitor_on_DEPRECATED.
    kernel = FakeKernel(tmp_path, sysfs=None, debugfs="deprecated")
    if busy:
        kernel.seed_debugfs_running(pid=4242)
    backend = debugfs_backend(kernel)
    assert backend.monitor_file == "monitor_on_DEPRECATED"
    if busy:
        with pytest.raises(DamonBusyError, match=r"monitor_on_DEPRECATED.*kdamond pid 4242"):
            backend.start(ethp_kdamond())
        assert kernel.writes == []
        return
    handle = backend.start(ethp_kdamond())
    assert kernel.read(f"{DEBUGFS}/monitor_on_DEPRECATED") == "on"
    assert backend.kdamonds()[0].state == "on"
    assert handle.pid == int(kernel.read(f"{DEBUGFS}/kdamond_pid"))
    assert backend.turn_off(handle) is True
    assert kernel.read(f"{DEBUGFS}/monitor_on_DEPRECATED") == "off"
