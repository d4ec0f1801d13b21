"""The sysfs back end against the fake kernel."""

from __future__ import annotations

import pytest
from fakekernel import ADMIN, SYSFS_5_18, SYSFS_6_6, FakeKernel

from damon_eval.damon.controller import build_kdamond
from damon_eval.damon.detect import open_backend
from damon_eval.damon.errors import (
    DamonBusyError,
    DamonError,
    DamonMissingError,
    DamonPermissionError,
    DamonReadbackError,
    DamonUnsupportedError,
)
from damon_eval.damon.model import (
    Context,
    Filter,
    Kdamond,
    MonitoringAttrs,
    Region,
    Scheme,
    Target,
)
from damon_eval.damon.schemes import parse_schemes
from damon_eval.damon.sysfs import SysfsBackend

PRCL = parse_schemes("4K null null 5 7s null pageout")
KD0 = f"{ADMIN}/kdamonds/0"
CTX = f"{KD0}/contexts/0"


def backend_for(kernel: FakeKernel) -> SysfsBackend:
    backend = open_backend(kernel.fs)
    assert isinstance(backend, SysfsBackend)
    return backend


def one_context(operations: str, target: Target, scheme: Scheme) -> Kdamond:
    return Kdamond(contexts=(Context(operations, targets=(target,), schemes=(scheme,)),))


def vaddr_kdamond(pid: int = 4321, schemes=PRCL, attrs: MonitoringAttrs | None = None):
    return build_kdamond("vaddr", [Target(pid)], attrs=attrs, schemes=schemes)[0]


def test_full_cycle_start_commit_stats_tried_regions_stop(tmp_path):
    kernel = FakeKernel(tmp_path, live_pids={4321, 999})
    backend = backend_for(kernel)
    kernel.fs.round_trips = 0
    handle = backend.start(vaddr_kdamond())
    # probe, staging with read-back, on.
    assert kernel.fs.round_trips <= 3
    assert handle.index == 0 and handle.pid == int(kernel.read(f"{KD0}/pid"))
    assert handle.boot_id == kernel.boot_id
    assert kernel.state(0) == "on"
    assert kernel.read(f"{CTX}/operations") == "vaddr"
    assert kernel.read(f"{CTX}/targets/0/pid_target") == "4321"
    scheme = f"{CTX}/schemes/0"
    assert kernel.read(f"{scheme}/action") == "pageout"
    assert kernel.read(f"{scheme}/access_pattern/sz/min") == "4096"
    assert kernel.read(f"{scheme}/access_pattern/nr_accesses/max") == "1"
    assert kernel.read(f"{scheme}/access_pattern/age/min") == "70"
    # nr_* files were written before anything below them.
    order = [path for path, _ in kernel.writes]
    assert order.index(f"{ADMIN}/kdamonds/nr_kdamonds") < order.index(f"{KD0}/contexts/nr_contexts")
    assert order.index(f"{CTX}/schemes/nr_schemes") < order.index(f"{scheme}/action")

    assert backend.is_running(handle)
    (stats,) = backend.scheme_stats(handle)
    assert (stats.nr_tried, stats.sz_tried, stats.nr_applied, stats.sz_applied) == (
        10,
        40960,
        5,
        20480,
    )
    assert backend.scheme_stats(handle)[0].nr_tried == 20  # fresh values each time
    (tried,) = backend.tried_regions(handle)
    assert tried.scheme_index == 0 and len(tried.regions) == 1
    assert tried.total_bytes == tried.size == 0x80000
    assert backend.tried_bytes(handle) == (0x80000,)
    backend.clear_tried_regions(handle)

    # commit: new target, two schemes (one of them stat).
    two = parse_schemes("4K null null 5 7s null pageout\nmin max min max min max stat")
    backend.commit(handle, vaddr_kdamond(999, two))
    assert kernel.read(f"{CTX}/targets/0/pid_target") == "999"
    assert kernel.read(f"{CTX}/schemes/nr_schemes") == "2"
    assert kernel.read(f"{CTX}/schemes/1/action") == "stat"
    assert len(backend.scheme_stats(handle)) == 2
    assert [t.scheme_index for t in backend.tried_regions(handle, [1])] == [1]

    assert backend.turn_off(handle) is True
    assert kernel.state(0) == "off"
    assert backend.turn_off(handle) is False  # idempotent


def test_readback_mismatch_is_refused(tmp_path):
    kernel = FakeKernel(tmp_path, readback_overrides={"nr_regions/max": "500"})
    backend = backend_for(kernel)
    with pytest.raises(DamonReadbackError, match=r"nr_regions/max: wrote '1000'.*reads back '500'"):
        backend.start(vaddr_kdamond())
    assert kernel.state(0) == "off"  # never turned on


def test_foreign_running_kdamond_is_refused_and_untouched(tmp_path):
    kernel = FakeKernel(tmp_path)
    kernel.seed_running_kdamond(operations="paddr", pid=77)
    before = kernel.snapshot()
    backend = backend_for(kernel)
    with pytest.raises(DamonBusyError) as info:
        backend.start(vaddr_kdamond())
    message = str(info.value)
    assert "kdamond 0" in message and "pid 77" in message and "paddr" in message
    assert "Nothing was changed" in message
    assert kernel.snapshot() == before
    assert kernel.writes == []


def test_ebusy_on_nr_kdamonds_is_a_busy_error(tmp_path):
    kernel = FakeKernel(tmp_path)
    backend = backend_for(kernel)
    backend.start(vaddr_kdamond())
    # A second controller's check races with ours: the kernel itself says EBUSY.
    other = SysfsBackend(kernel.fs)
    other._refuse_if_running = lambda probe: []  # type: ignore[method-assign]
    with pytest.raises(DamonBusyError, match=r"Device or resource busy"):
        other.start(vaddr_kdamond())
    assert kernel.state(0) == "on"


def test_idle_kdamonds_are_reset(tmp_path, caplog):
    kernel = FakeKernel(tmp_path)
    kernel.seed_idle_kdamond()
    kernel.seed_idle_kdamond()
    backend = backend_for(kernel)
    handle = backend.start(vaddr_kdamond())
    assert handle.index == 0 and kernel.nr_kdamonds() == 1
    assert "resetting 2 idle kdamond directories" in caplog.text


def test_missing_damon(tmp_path):
    kernel = FakeKernel(tmp_path, sysfs=None, debugfs=None)
    with pytest.raises(DamonMissingError, match=r"DAMON not found on local:.*CONFIG_DAMON_SYSFS"):
        open_backend(kernel.fs)


def test_permission_denied(tmp_path):
    kernel = FakeKernel(tmp_path, deny_writes=True)
    backend = backend_for(kernel)
    with pytest.raises(DamonPermissionError, match=r"permission denied.*root"):
        backend.start(vaddr_kdamond())


def test_failing_write_is_reported_with_its_cause(tmp_path):
    # Root ignores file modes, so provoke a real failing write another way:
    # writing to a directory fails with EISDIR.
    kernel = FakeKernel(tmp_path)
    target = kernel.host(f"{ADMIN}/kdamonds/nr_kdamonds")
    target.unlink()
    target.mkdir()
    backend = SysfsBackend(kernel.fs)
    with pytest.raises(DamonError, match=r"Is a directory"):
        backend.start(vaddr_kdamond())


def test_kernel_rejecting_on_is_explained(tmp_path):
    kernel = FakeKernel(tmp_path, live_pids={1})
    backend = backend_for(kernel)
    with pytest.raises(
        DamonError, match=r"refused to turn .* on .*target pids \[4321\] must exist"
    ):
        backend.start(vaddr_kdamond(4321))
    # Nothing runs and the staged directory is gone: the machine is as it was.
    assert kernel.nr_kdamonds() == 0


def test_unavailable_operations_are_refused_before_on(tmp_path):
    kernel = FakeKernel(tmp_path, avail_operations=("paddr",))
    backend = backend_for(kernel)
    with pytest.raises(DamonUnsupportedError, match=r"'vaddr' is not available.*lists paddr"):
        backend.start(vaddr_kdamond())


def test_paddr_with_regions_and_filters_on_a_6_15_plus_layout(tmp_path):
    kernel = FakeKernel(tmp_path)
    backend = backend_for(kernel)
    scheme = Scheme(
        action="pageout",
        filters=(
            Filter("anon", allow=False),
            Filter("addr", addr_start=4096, addr_end=8192, allow=True),
            Filter("memcg", memcg_path="/workload"),
        ),
    )
    target = Target(None, (Region(4096, 1 << 30),))
    backend.start(one_context("paddr", target, scheme))
    scheme_dir = f"{CTX}/schemes/0"
    assert kernel.read(f"{CTX}/targets/0/regions/0/end") == str(1 << 30)
    assert kernel.read(f"{CTX}/targets/0/pid_target") == "0"
    # addr is handled by the core, anon and memcg by the operations set.
    assert kernel.read(f"{scheme_dir}/core_filters/nr_filters") == "1"
    assert kernel.read(f"{scheme_dir}/core_filters/0/type") == "addr"
    assert kernel.read(f"{scheme_dir}/core_filters/0/allow") == "Y"
    assert kernel.read(f"{scheme_dir}/ops_filters/nr_filters") == "2"
    assert kernel.read(f"{scheme_dir}/ops_filters/1/memcg_path") == "/workload"
    assert kernel.read(f"{scheme_dir}/filters/nr_filters") == "0"
    assert "filters/allow" in backend.features().capabilities


def test_older_layout_without_optional_files(tmp_path):
    kernel = FakeKernel(tmp_path, sysfs=SYSFS_5_18)
    backend = backend_for(kernel)
    handle = backend.start(vaddr_kdamond())
    assert not kernel.host(f"{CTX}/schemes/0/apply_interval_us").exists()
    features = backend.features()
    assert features.operations == ("vaddr", "paddr")
    assert "update_schemes_tried_regions" not in (features.state_commands or ())
    assert "commit" not in (features.state_commands or ())
    with pytest.raises(DamonUnsupportedError, match=r"tried_regions"):
        backend.tried_regions(handle)
    backend.turn_off(handle)
    with_interval = Scheme(action="stat", apply_interval_us=1000)
    with pytest.raises(DamonUnsupportedError, match=r"apply_interval_us.*6.7"):
        backend.start(one_context("vaddr", Target(1), with_interval))
    filtered = Scheme("stat", filters=(Filter("anon"),))
    with pytest.raises(DamonUnsupportedError, match=r"filters need Linux 6.3"):
        backend.start(one_context("vaddr", Target(1), filtered))


def test_allow_filters_need_the_allow_file(tmp_path):
    kernel = FakeKernel(tmp_path, sysfs=SYSFS_6_6)
    backend = backend_for(kernel)

    def with_filter(damos_filter: Filter) -> Kdamond:
        return one_context("vaddr", Target(1), Scheme("stat", filters=(damos_filter,)))

    with pytest.raises(DamonUnsupportedError, match=r"allow filter.*6.14"):
        backend.start(with_filter(Filter("anon", allow=True)))
    handle = backend.start(with_filter(Filter("anon", allow=False)))
    assert kernel.read(f"{CTX}/schemes/0/filters/0/type") == "anon"
    assert not kernel.host(f"{CTX}/schemes/0/filters/0/allow").exists()
    features = backend.features()
    assert "update_schemes_tried_bytes" in (features.state_commands or ())
    backend.turn_off(handle)


def test_kdamonds_listing_and_features_read_only(tmp_path):
    kernel = FakeKernel(tmp_path)
    kernel.seed_running_kdamond(operations="paddr", pid=77)
    backend = backend_for(kernel)
    before = kernel.snapshot()
    (status,) = backend.kdamonds()
    assert (status.index, status.state, status.pid, status.operations) == (0, "on", 77, "paddr")
    assert (status.nr_targets, status.nr_schemes) == (0, 1)
    features = backend.features()
    assert features.operations == ("vaddr", "fvaddr", "paddr")
    assert "update_schemes_stats" in (features.state_commands or ())
    assert "lru_prio" in (features.scheme_actions or ())
    assert features.tracepoints == ("damon_aggregated", "damos_before_apply")
    assert kernel.snapshot() == before and kernel.writes == []


def test_features_unknown_without_kdamond_directories(tmp_path):
    backend = backend_for(FakeKernel(tmp_path))
    features = backend.features()
    assert features.operations is None and features.state_commands is None
    assert "unknown" in features.notes[0]


def test_probe_features_looks_inside_a_scratch_kdamond_and_removes_it(tmp_path):
    kernel = FakeKernel(tmp_path)
    backend = backend_for(kernel)
    before = kernel.snapshot()
    features = backend.probe_features()
    assert features.operations == ("vaddr", "fvaddr", "paddr")
    assert "pageout" in (features.scheme_actions or ())
    assert "migrate_hot" in (features.scheme_actions or ())  # target_nid seen in the scheme
    assert "update_schemes_tried_regions" in (features.state_commands or ())
    assert "tried_regions" in features.capabilities and not features.notes
    # Never turned on, and gone again.
    assert all(value != "on" for path, value in kernel.writes if path.endswith("/state"))
    after = kernel.snapshot()
    assert after.keys() == before.keys() and kernel.nr_kdamonds() == 0
    assert backend.features() == features


def test_probe_features_only_reads_when_kdamonds_exist(tmp_path):
    kernel = FakeKernel(tmp_path)
    kernel.seed_running_kdamond(operations="paddr", pid=77)
    backend = backend_for(kernel)
    before = kernel.snapshot()
    features = backend.probe_features()
    assert features.operations == ("vaddr", "fvaddr", "paddr")
    assert kernel.snapshot() == before and kernel.writes == []


def test_probe_features_on_the_first_sysfs_kernels(tmp_path):
    kernel = FakeKernel(tmp_path, sysfs=SYSFS_5_18)
    features = backend_for(kernel).probe_features()
    assert features.operations == ("vaddr", "paddr") and "Linux < 5.19" in features.notes[0]
    assert features.state_commands == ("on", "off", "update_schemes_stats")
    assert kernel.nr_kdamonds() == 0


def test_turn_off_leaves_a_kdamond_that_is_not_ours(tmp_path):
    kernel = FakeKernel(tmp_path)
    backend = backend_for(kernel)
    handle = backend.start(vaddr_kdamond())
    # Someone else restarted the slot: same index, another pid.
    kernel.stop_kdamond(0)
    kernel.fs.write(f"{KD0}/state", "on")
    assert kernel.state(0) == "on" and int(kernel.read(f"{KD0}/pid")) != handle.pid
    assert backend.turn_off(handle) is False
    assert kernel.state(0) == "on"
    with pytest.raises(DamonError, match=r"not the kdamond damon-eval started"):
        backend.commit(handle, vaddr_kdamond())


def test_turn_off_after_the_target_exited(tmp_path):
    kernel = FakeKernel(tmp_path)
    backend = backend_for(kernel)
    handle = backend.start(vaddr_kdamond())
    kernel.stop_kdamond(0)  # the kdamond stops by itself when its target exits
    assert not backend.is_running(handle)
    assert backend.turn_off(handle) is False


def test_commands_on_a_stopped_kdamond_say_why(tmp_path):
    kernel = FakeKernel(tmp_path)
    backend = backend_for(kernel)
    handle = backend.start(vaddr_kdamond())
    kernel.stop_kdamond(0)  # the target process exited
    with pytest.raises(DamonError, match=r"not running any more.*did its target process exit"):
        backend.tried_regions(handle)
    with pytest.raises(DamonError, match=r"not running any more"):
        backend.scheme_stats(handle)


def test_start_on_a_clean_machine_takes_few_round_trips(tmp_path):
    kernel = FakeKernel(tmp_path)
    backend = backend_for(kernel)  # one round trip to detect the interface
    kernel.fs.round_trips = 0
    handle = backend.start(vaddr_kdamond())
    # probe (nr_kdamonds, states, boot id); nr_* + listings + leaves + read-back; on.
    assert kernel.fs.round_trips == 3
    kernel.fs.round_trips = 0
    backend.scheme_stats(handle)
    assert kernel.fs.round_trips == 1
    kernel.fs.round_trips = 0
    backend.turn_off(handle)
    backend.release(handle)
    assert kernel.nr_kdamonds() == 0
