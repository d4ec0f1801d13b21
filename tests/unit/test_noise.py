"""Noise steps without root or QEMU: the campaign options, the pinning plan and its
application to a fake guest, memory settling on a fake tree, and what a run records."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml

from damon_eval.config.campaign import campaign_from_dict
from damon_eval.errors import ConfigError, DamonEvalError
from damon_eval.fs import LocalFs
from damon_eval.machine_select import GuestSettings, MachineSelector
from damon_eval.machines.local import LocalMachine
from damon_eval.measure import noise, run, system
from damon_eval.measure.noise import BENCH_ICOUNT_ENV, NoiseSettings, benchmark_icount, pin_plan
from damon_eval.measure.plan import campaign_guest

MINIMAL = {"campaign": "t", "workloads": ["synthetic/zigzag"], "configs": ["orig"]}

BUDDYINFO = (
    "Node 0, zone      DMA   1   0   1   0  2  1  1 0 1 1   3\n"
    "Node 0, zone    DMA32 745 564 386 190 77 36 13 8 6 5 101\n"
)
# order 9 (2 MiB) and 10 (4 MiB) blocks: DMA 1x2 + 3x4, DMA32 5x2 + 101x4
BUDDYINFO_HUGE_MIB = 2 + 12 + 10 + 404


# ------------------------------------------------------------------ options


def _campaign(**noise_section):
    data = dict(MINIMAL)
    if noise_section:
        data["noise"] = noise_section
    return campaign_from_dict(data, "<test>")


def test_noise_defaults_and_a_bare_yaml_off():
    defaults = NoiseSettings.from_campaign(_campaign().settings)
    assert defaults == NoiseSettings("auto", "auto", "auto")
    section = yaml.safe_load("pin_cpus: off\ndrop_caches: off\ncompact_memory: on\n")
    assert section["pin_cpus"] is False  # YAML 1.1: what a user writing `off` gets
    settings = NoiseSettings.from_campaign(_campaign(**section).settings)
    assert settings == NoiseSettings(drop_caches="off", compact_memory="on", pin_cpus="off")


def test_auto_steps_run_only_outside_guests():
    auto = NoiseSettings()
    for step in ("drop_caches", "compact_memory"):
        assert auto.step(step, None) == (True, "")  # --ssh / this machine
        runs, reason = auto.step(step, "restore")
        assert not runs and reason.startswith("auto: skipped after a restore")
        runs, reason = auto.step(step, "cold")
        assert not runs and reason.startswith("auto: skipped after a cold boot")
    forced = NoiseSettings(drop_caches="on", compact_memory="off")
    assert forced.step("drop_caches", "restore") == (True, "")
    assert forced.step("drop_caches", "cold") == (True, "")
    assert forced.step("compact_memory", "cold") == (False, "noise.compact_memory is off")
    with pytest.raises(DamonEvalError, match="unknown boot kind 'warm'; valid: restore, cold"):
        auto.step("drop_caches", "warm")


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"pin_cpus": "on"}, "pin_cpus"),
        ({"pin_cpus": True}, "pin_cpus"),
        ({"drop_caches": "yes"}, "drop_caches"),
        ({"compact_memory": 1}, "compact_memory"),
        ({"compaction": True}, "compaction"),
    ],
)
def test_bad_noise_options_are_refused_naming_the_key(section, message):
    with pytest.raises(ConfigError, match=message):
        _campaign(**section)


def test_icount_is_not_a_campaign_option():
    with pytest.raises(ConfigError, match="'icount' was unexpected"):
        campaign_from_dict({**MINIMAL, "guest": {"icount": "shift=0,sleep=off"}}, "<t>")


def test_the_benchmark_icount_hook_is_checked_and_reaches_the_guest(monkeypatch, caplog):
    for good in ("shift=auto", "shift=0,sleep=off", "shift=7", "shift=auto,align=off"):
        monkeypatch.setenv(BENCH_ICOUNT_ENV, good)
        assert campaign_guest(_campaign()).guest.icount == good
    assert "not comparable" in caplog.text
    for bad in ("shift=11", "sleep", "shift=auto;rm -rf /"):
        monkeypatch.setenv(BENCH_ICOUNT_ENV, bad)
        with pytest.raises(ConfigError, match=rf"{BENCH_ICOUNT_ENV}=.*valid: shift="):
            benchmark_icount()
    monkeypatch.delenv(BENCH_ICOUNT_ENV)
    assert campaign_guest(_campaign()).guest.icount is None


# ----------------------------------------------------------------- the plan


def test_two_cpus_are_too_few_for_two_vcpus_and_the_reason_says_so():
    plan = pin_plan("auto", 2, {0, 1})
    assert not plan.pins
    assert plan.reason == "host has 2 CPUs for this process (0,1), needs vcpus+1 = 3"
    assert plan.to_dict() == {"mode": "auto", "applied": False, "reason": plan.reason}


def test_enough_cpus_give_each_vcpu_its_own_and_the_harness_the_rest():
    plan = pin_plan("auto", 2, {0, 1, 2, 3})
    assert plan.vcpu_cpus == (2, 3)
    assert plan.harness_cpus == (0, 1)
    exact = pin_plan("auto", 2, {4, 6, 7})  # allowed CPUs need not start at 0
    assert (exact.vcpu_cpus, exact.harness_cpus) == ((6, 7), (4,))
    assert exact.to_dict() == {
        "mode": "auto",
        "applied": True,
        "vcpu_cpus": [6, 7],
        "harness_cpus": [4],
    }


def test_off_explicit_and_other_machines_do_not_pin_and_say_why():
    assert pin_plan("off", 2, set(range(8))).reason == "noise.pin_cpus is off"
    explicit = pin_plan("auto", 2, set(range(8)), explicit=(0, 1))
    assert explicit.mode == "explicit" and not explicit.pins
    assert "guest.pin_vcpus [0, 1]" in explicit.reason
    remote = pin_plan("auto", 2, set(range(8)), not_here="runs on remote x")
    assert not remote.pins and remote.reason == "runs on remote x"


def test_only_a_skipped_automatic_pinning_warns(caplog):
    caplog.set_level(logging.WARNING)
    noise.warn_unpinned(pin_plan("off", 2, {0, 1}))
    noise.warn_unpinned(pin_plan("auto", 2, {0, 1, 2}))
    assert caplog.records == []
    noise.warn_unpinned(pin_plan("auto", 2, {0, 1}))
    assert [r.getMessage() for r in caplog.records] == [
        "vCPUs not pinned: host has 2 CPUs for this process (0,1), needs vcpus+1 = 3"
    ]


def test_run_selectors_map_to_the_reasons():
    fresh = MachineSelector.fresh_guest(GuestSettings())
    assert run._why_not_pinned_here(fresh) == ""
    assert "attached guest" in run._why_not_pinned_here(MachineSelector.attached_guest("g"))
    assert "natively on this machine" in run._why_not_pinned_here(MachineSelector.local())


# --------------------------------------------------------- applying a plan


class FakeGuest:
    pid = 100

    def vcpu_threads(self):
        return {0: 101, 1: 102}


def _proc(tmp_path: Path, tasks: dict[int, list[int]]) -> LocalFs:
    for pid, tids in tasks.items():
        for tid in tids:
            (tmp_path / f"proc/{pid}/task/{tid}").mkdir(parents=True)
    return LocalFs(root=tmp_path)


def test_pinning_places_vcpus_qemu_threads_and_the_harness_then_restores_the_harness(tmp_path):
    fs = _proc(tmp_path, {100: [100, 101, 102, 103], 555: [555, 556]})
    calls: list[tuple[int, set[int]]] = []
    plan = pin_plan("auto", 2, {0, 1, 2})
    with noise.pinned(
        plan,
        FakeGuest(),
        fs=fs,
        setaffinity=lambda tid, cpus: calls.append((tid, set(cpus))),
        getaffinity=lambda tid: {0, 1, 2},
        own_pid=555,
    ) as record:
        assert calls == [
            (101, {1}),
            (102, {2}),  # each vCPU thread its own CPU
            (100, {0}),
            (103, {0}),  # QEMU's main loop and I/O threads with the harness
            (555, {0}),
            (556, {0}),  # the harness's threads
        ]
        assert record["applied"] is True
        assert record["vcpu_threads"] == {"0": 101, "1": 102}
        assert record["qemu_other_threads"] == 2
    assert calls[-2:] == [(555, {0, 1, 2}), (556, {0, 1, 2})]


def test_a_refused_pinning_is_recorded_and_the_run_goes_on(tmp_path, caplog):
    fs = _proc(tmp_path, {100: [100, 101, 102], 555: [555]})

    def refuse(tid, cpus):
        raise PermissionError(1, "Operation not permitted")

    with noise.pinned(
        pin_plan("auto", 2, {0, 1, 2}), FakeGuest(), fs=fs, setaffinity=refuse,
        getaffinity=lambda tid: {0, 1, 2}, own_pid=555,
    ) as record:  # fmt: skip
        assert record["applied"] is False
        assert record["reason"].startswith("pinning failed: ")
    assert "running unpinned" in caplog.text


def test_a_plan_that_does_not_pin_touches_nothing(tmp_path):
    def fail(*args):
        raise AssertionError("nothing may be pinned")

    plan = pin_plan("auto", 2, {0, 1})
    with noise.pinned(plan, FakeGuest(), setaffinity=fail, getaffinity=fail) as record:
        assert record["applied"] is False and "needs vcpus+1 = 3" in record["reason"]


# ----------------------------------------------------------- memory, clocks


def test_free_huge_mib_counts_blocks_of_order_nine_and_up():
    assert system.free_huge_mib(BUDDYINFO) == BUDDYINFO_HUGE_MIB
    assert system.free_huge_mib(None) is None


def _memory_tree(tmp_path: Path, compaction: bool = True) -> tuple[LocalMachine, list[str]]:
    vm = tmp_path / "proc/sys/vm"
    vm.mkdir(parents=True)
    (vm / "drop_caches").write_text("")
    if compaction:
        (vm / "compact_memory").write_text("")
    (tmp_path / "proc/buddyinfo").write_text(BUDDYINFO)
    writes: list[str] = []
    fs = LocalFs(root=tmp_path, write_hook=lambda path, value: writes.append(f"{path}={value}"))
    return LocalMachine(tmp_path, fs=fs), writes


def test_caches_are_dropped_before_memory_is_compacted(tmp_path):
    machine, writes = _memory_tree(tmp_path)
    record = system.settle_memory(machine, drop_caches=True, compact_memory=True)
    assert writes == ["/proc/sys/vm/drop_caches=3", "/proc/sys/vm/compact_memory=1"]
    assert record["applied"] is True and record["caches_dropped_first"] is True
    assert record["free_huge_mib_before"] == BUDDYINFO_HUGE_MIB
    assert record["free_huge_mib_after"] == BUDDYINFO_HUGE_MIB


def test_compaction_alone_drops_nothing_and_off_does_nothing(tmp_path):
    machine, writes = _memory_tree(tmp_path)
    assert system.settle_memory(machine, drop_caches=False, compact_memory=True)["applied"]
    assert writes == ["/proc/sys/vm/compact_memory=1"]
    writes.clear()
    record = system.settle_memory(machine, drop_caches=True, compact_memory=False)
    assert record == {"applied": False, "reason": "noise.compact_memory is off"}
    assert writes == []


def test_a_kernel_without_compaction_or_a_refused_write_is_recorded(tmp_path, caplog):
    machine, _ = _memory_tree(tmp_path / "a", compaction=False)
    record = system.settle_memory(machine, drop_caches=True, compact_memory=True)
    assert record == {"applied": False, "reason": "the kernel has no /proc/sys/vm/compact_memory"}

    root = tmp_path / "b"
    machine, _ = _memory_tree(root)

    def refuse(path, value):
        raise PermissionError(13, "Permission denied")

    machine.fs.write_hook = refuse
    record = system.settle_memory(machine, drop_caches=True, compact_memory=True)
    assert record["applied"] is False
    assert record["reason"].startswith("not applied: cannot write '3' to /proc/sys/vm/drop_caches")
    assert "memory compaction not applied" in caplog.text


def test_the_clocksource_is_read_with_the_thp_setting(tmp_path):
    from test_machines import _configuration, _tree

    machine = _tree(tmp_path)
    clocksource = tmp_path / "sys/devices/system/clocksource/clocksource0/current_clocksource"
    clocksource.parent.mkdir(parents=True)
    clocksource.write_text("tsc\n")
    assert system.apply_system_settings(machine, _configuration())["clocksource"] == "tsc"
    clocksource.unlink()
    assert system.apply_system_settings(machine, _configuration())["clocksource"] is None


def test_clock_facts_say_how_each_clock_was_kept():
    restored = noise.clock_facts("restore", "tsc")
    assert restored["wall_clock"] == "set from the host's clock right after the restore"
    assert restored["runtime_clock"].startswith("CLOCK_MONOTONIC in the guest")
    assert restored["clocksource"] == "tsc"
    assert "cold boot" in noise.clock_facts("cold", None)["wall_clock"]
    assert noise.clock_facts(None, None)["wall_clock"] == "the machine's own"


def test_a_machine_that_is_not_a_qemu_guest_is_run_unpinned_with_the_reason(tmp_path):
    def fail(*args):
        raise AssertionError("nothing may be pinned")

    assert isinstance(FakeGuest(), noise.QemuGuest)
    assert not isinstance(object(), noise.QemuGuest)
    with noise.pinned(
        pin_plan("auto", 2, {0, 1, 2}), None, setaffinity=fail, getaffinity=fail
    ) as record:
        assert record["applied"] is False
        assert "not a QEMU guest" in record["reason"]
