"""Persistent machines: settings snapshots and restore scripts, foreign kdamonds, preparation
under /var/tmp/damon-eval/<digest>, guest paths mapped; run with LocalMachine (no root)."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest
from fakekernel import FakeKernel

from damon_eval.damon.controller import (
    DamonController,
    OwnershipRegistry,
    foreign_kdamond_threads,
    refuse_if_damon_busy,
)
from damon_eval.errors import DamonBusyError
from damon_eval.machines.local import LocalMachine, parse_facts
from damon_eval.machines.preparation import (
    PREPARED_STAMP,
    Preparation,
    map_prefix,
    prepare_machine,
)
from damon_eval.machines.protocol import kernel_path
from damon_eval.measure.system import (
    SNAPSHOT_SCRIPT,
    SwapDevice,
    SystemSettings,
    restore_script,
    restore_steps,
)

RECLAIM = "/sys/module/damon_reclaim/parameters"


def _settings(**changes) -> SystemSettings:
    base = {
        "thp_enabled": "always",
        "swaps": (SwapDevice("/swapfile", "file", -2),),
        "zram_loaded": False,
        "zram0_disksize": None,
        "zram0_comp": None,
        "module_params": {f"{RECLAIM}/enabled": "N", f"{RECLAIM}/min_age": "120000000"},
    }
    base.update(changes)
    return SystemSettings(**base)


def test_snapshot_parsing():
    text = (
        "thp always [madvise] never\n"
        "swap /dev/zram0 partition 100\n"
        "swap /swapfile file -2\n"
        "zram_loaded\n"
        "zram0_disksize 4294967296\n"
        "zram0_comp lzo [lz4] zstd\n"
        f"mode 600 {RECLAIM}/enabled\n"
        f"mode 644 {RECLAIM}/min_age\n"
        f"mode 444 {RECLAIM}/kdamond_pid\n"
        f"value {RECLAIM}/enabled:N\n"
        f"value {RECLAIM}/min_age:120000000\n"
        f"value {RECLAIM}/kdamond_pid:-1\n"
    )
    settings = SystemSettings.parse(text)
    assert settings.thp_enabled == "madvise"
    assert settings.swaps == (
        SwapDevice("/dev/zram0", "partition", 100),
        SwapDevice("/swapfile", "file", -2),
    )
    assert settings.zram_loaded and settings.zram0_disksize == 4294967296
    assert settings.zram0_comp == "lz4"
    # read-only parameters (statistics, pids) are never written back
    assert settings.module_params == {f"{RECLAIM}/enabled": "N", f"{RECLAIM}/min_age": "120000000"}


def test_snapshot_script_is_posix_sh_and_reads_a_machine():
    # run against this machine: read-only, and it must at least parse THP and swaps
    result = subprocess.run(["sh", "-n"], input=SNAPSHOT_SCRIPT, text=True, check=False)
    assert result.returncode == 0
    out = subprocess.run(["sh", "-s"], input=SNAPSHOT_SCRIPT, capture_output=True, text=True,
                         check=False).stdout  # fmt: skip
    settings = SystemSettings.parse(out)
    thp = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    if thp.exists():
        assert f"[{settings.thp_enabled}]" in thp.read_text()
    swaps = [line.split()[0] for line in Path("/proc/swaps").read_text().splitlines()[1:]]
    assert [s.name for s in settings.swaps] == swaps


def test_nothing_changed_needs_no_restore():
    assert restore_script(_settings(), _settings()) == ""


def test_prcl_run_on_a_machine_without_zram_is_undone():
    before = _settings()
    after_run = _settings(
        thp_enabled="madvise",
        swaps=(SwapDevice("/dev/zram0", "partition", -2),),
        zram_loaded=True,
        zram0_disksize=4 << 30,
        zram0_comp="lzo-rle",
    )
    whats = [what for what, _ in restore_steps(before, after_run)]
    assert whats == [
        "echo always > /sys/kernel/mm/transparent_hugepage/enabled",
        "swapoff /dev/zram0",
        "echo 1 > /sys/block/zram0/reset; modprobe -r zram",
        "swapon /swapfile",  # priority -2 was automatic
    ]
    script = restore_script(before, after_run)
    assert subprocess.run(["sh", "-n"], input=script, text=True, check=False).returncode == 0
    assert "restore-failed" in script and script.rstrip().endswith("exit $rc")


def test_a_users_zram_swap_is_rebuilt_as_it_was():
    before = _settings(
        swaps=(SwapDevice("/dev/zram0", "partition", 100),),
        zram_loaded=True,
        zram0_disksize=1 << 30,
        zram0_comp="zstd",
    )
    after_run = _settings(
        thp_enabled="madvise",
        swaps=(SwapDevice("/dev/zram0", "partition", -2),),
        zram_loaded=True,
        zram0_disksize=4 << 30,
        zram0_comp="lz4",
    )
    whats = [what for what, _ in restore_steps(before, after_run)]
    assert whats == [
        "echo always > /sys/kernel/mm/transparent_hugepage/enabled",
        "swapoff /dev/zram0",
        "echo 1 > /sys/block/zram0/reset && echo zstd > /sys/block/zram0/comp_algorithm && "
        f"echo {1 << 30} > /sys/block/zram0/disksize",
        "mkswap /dev/zram0 >/dev/null && swapon -p 100 /dev/zram0",
    ]


def test_damon_module_is_switched_off_before_its_parameters_go_back():
    before = _settings()
    after_run = _settings(
        module_params={f"{RECLAIM}/enabled": "Y", f"{RECLAIM}/min_age": "5000000"}
    )
    assert [what for what, _ in restore_steps(before, after_run)] == [
        f"echo N > {RECLAIM}/enabled",
        f"echo 120000000 > {RECLAIM}/min_age",
    ]
    # and a module that was on is switched on again after its parameters
    on = _settings(module_params={f"{RECLAIM}/enabled": "Y", f"{RECLAIM}/min_age": "1"})
    off = _settings(module_params={f"{RECLAIM}/enabled": "N", f"{RECLAIM}/min_age": "2"})
    assert [what for what, _ in restore_steps(on, off)] == [
        f"echo 1 > {RECLAIM}/min_age",
        f"echo Y > {RECLAIM}/enabled",
    ]


def test_restore_script_runs_every_step_and_reports_failures(tmp_path):
    thp = tmp_path / "enabled"
    thp.write_text("always [madvise] never\n")
    script = restore_script(_settings(), _settings(thp_enabled="madvise"))
    script = script.replace(
        "/sys/kernel/mm/transparent_hugepage/enabled", str(tmp_path / "nodir/x")
    )
    result = subprocess.run(["sh", "-s"], input=script, capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert result.stdout.startswith("restore-failed echo always > ")


def test_foreign_kdamond_threads_in_a_fake_proc(tmp_path):
    for pid, comm in ((1, "systemd"), (77, "kdamond.0"), (88, "kdamond.1"), (99, "bash")):
        (tmp_path / "proc" / str(pid)).mkdir(parents=True)
        (tmp_path / "proc" / str(pid) / "comm").write_text(comm + "\n")
    machine = LocalMachine(tmp_path)
    proc = kernel_path(machine, "/proc")
    assert foreign_kdamond_threads(machine, ours={77}, proc_dir=proc) == [(88, "kdamond.1")]


def test_busy_damon_is_refused_naming_the_kdamond(tmp_path, monkeypatch):
    monkeypatch.setenv("DAMON_EVAL_CACHE", str(tmp_path / "cache"))
    kernel = FakeKernel(tmp_path / "machine")
    kernel.seed_running_kdamond(pid=77)
    machine = LocalMachine(kernel.root, fs=kernel.fs)
    with pytest.raises(DamonBusyError) as info:
        refuse_if_damon_busy(machine, DamonController(machine.fs))
    assert "kdamond 0 (pid 77, paddr)" in str(info.value)
    assert "never touches other kdamonds" in str(info.value)
    assert kernel.writes == []


def test_kdamond_threads_outside_sysfs_are_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("DAMON_EVAL_CACHE", str(tmp_path / "cache"))
    kernel = FakeKernel(tmp_path / "machine")
    (kernel.root / "proc" / "4242").mkdir(parents=True)
    (kernel.root / "proc" / "4242" / "comm").write_text("kdamond.0\n")
    machine = LocalMachine(kernel.root, fs=kernel.fs)
    registry = OwnershipRegistry(tmp_path / "owned.json")
    with pytest.raises(DamonBusyError, match=r"kdamond\.0 \(pid 4242\) run outside the sysfs"):
        refuse_if_damon_busy(
            machine,
            DamonController(machine.fs, registry=registry),
            proc_dir=kernel_path(machine, "/proc"),
        )


def test_map_prefix_maps_whole_path_components():
    text = (
        "cc -o /opt/damon-eval/bin/x /opt/damon-eval/src/x.c; ls /opt/damon-eval; /opt/damon-evalx"
    )
    assert map_prefix(text, "/var/tmp/damon-eval/abc") == (
        "cc -o /var/tmp/damon-eval/abc/bin/x /var/tmp/damon-eval/abc/src/x.c; "
        "ls /var/tmp/damon-eval/abc; /opt/damon-evalx"
    )
    assert map_prefix("'/opt/damon-eval/bin/de-agent' run", "/p") == "'/p/bin/de-agent' run"
    assert map_prefix(text, None) == text


def test_prepare_machine_uploads_builds_once_and_maps_paths(tmp_path):
    src = tmp_path / "tool.sh"
    src.write_text("#!/bin/sh\necho from /opt/damon-eval/bin\n")
    src.chmod(0o755)
    counter = tmp_path / "count"
    prep = Preparation(
        uploads=((src, "/opt/damon-eval/src/tool.sh"),),
        commands=(
            "mkdir -p /opt/damon-eval/bin && cp /opt/damon-eval/src/tool.sh /opt/damon-eval/bin/",
            f"echo x >> {counter}",
        ),
    )
    machine = LocalMachine()
    base = str(tmp_path / "base")
    prefix = prepare_machine(machine, prep, base=base)
    assert prefix == f"{base}/{prep.digest()}"
    tool = Path(prefix) / "bin" / "tool.sh"
    assert tool.read_text() == f"#!/bin/sh\necho from {prefix}/bin\n"
    assert os.access(tool, os.X_OK)
    assert (Path(prefix) / PREPARED_STAMP).exists()
    assert prepare_machine(machine, prep, base=base) == prefix
    assert counter.read_text() == "x\n", "a prepared digest is reused, not rebuilt"


def test_failed_preparation_leaves_no_stamp_and_says_what_failed(tmp_path):
    from damon_eval.machines.preparation import PreparationError

    prep = Preparation(commands=("echo building; echo 'gcc: not found' >&2; exit 127",))
    with pytest.raises(PreparationError) as info:
        prepare_machine(LocalMachine(), prep, base=str(tmp_path))
    message = str(info.value)
    assert "exit status 127" in message and "install gcc" in message
    assert not (tmp_path / prep.digest() / PREPARED_STAMP).exists()


def test_local_machine_commands_and_facts(tmp_path):
    machine = LocalMachine()
    result = machine.run("echo hi; exit 3", timeout_s=5)
    assert (result.exit_status, result.stdout, result.stderr) == (3, "hi\n", "")
    assert machine.run("sleep 5", timeout_s=1).exit_status == 124
    src = tmp_path / "a"
    src.write_text("x")
    machine.put(src, str(tmp_path / "sub" / "b"))
    machine.get(str(tmp_path / "sub" / "b"), tmp_path / "c")
    assert (tmp_path / "c").read_text() == "x"
    facts = machine.facts()
    assert facts["kernel_release"] == os.uname().release
    assert facts["accel"] == "none (bare metal or foreign VM)"
    assert facts["nr_cpus"] == os.cpu_count()
    assert parse_facts("a=1\nb = two words\nnot a pair\n") == {"a": "1", "b": "two words"}
    assert shlex.split(machine.localize("x"))  # no prefix: unchanged
