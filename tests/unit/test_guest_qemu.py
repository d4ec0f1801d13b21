"""QEMU command lines, overlays, and the parent-death guarantee (no QEMU needed)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from pathlib import Path

import pytest

from damon_eval.errors import GuestError
from damon_eval.guest import qemu
from damon_eval.guest.qemu import MachineConfig, qemu_argv, shape_argv


def _config(tmp_path: Path, **changes) -> MachineConfig:
    config = MachineConfig(
        accel="tcg",
        vcpus=2,
        memory_mib=2048,
        kernel_path=tmp_path / "vmlinuz",
        initrd_path=tmp_path / "initrd.img",
        disk_path=tmp_path / "disk.qcow2",
        ssh_port=40022,
        qmp_socket=tmp_path / "qmp.sock",
        control_socket=tmp_path / "ctl.sock",
        console_log=tmp_path / "console.log",
        cmdline_extra=("quiet",),
        name="g1",
    )
    return replace(config, **changes)


def _option(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, value in enumerate(argv) if value == flag]


def test_cold_tcg_argv(tmp_path):
    argv = qemu_argv(_config(tmp_path))
    assert argv[0] == "qemu-system-x86_64"
    for flag in ("-nodefaults", "-no-user-config", "-no-reboot"):
        assert flag in argv
    assert _option(argv, "-accel") == ["tcg,thread=multi"]
    # QEMU 7.2's TCG "max" less SSE4a: PARSEC's x264 crashes with it (docs/workloads.md)
    assert _option(argv, "-cpu") == ["max,-sse4a"]
    assert qemu.qemu_cpu(argv) == "max,-sse4a"
    assert _option(argv, "-smp") == ["2"] and _option(argv, "-m") == ["2048M"]
    cmdline = _option(argv, "-append")[0].split()
    for word in ("root=/dev/vda", "console=ttyS0", "panic=-1", "net.ifnames=0", "quiet"):
        assert word in cmdline
    (netdev,) = _option(argv, "-netdev")
    assert "restrict=on" in netdev
    assert "hostfwd=tcp:127.0.0.1:40022-:22" in netdev
    assert netdev.count("hostfwd") == 1  # nothing but SSH is forwarded
    assert "-incoming" not in argv
    devices = _option(argv, "-device")
    assert "virtserialport,bus=vser0.0,chardev=ctl,name=org.damon-eval.ctl" in devices
    assert "virtio-serial-pci,id=vser0" in devices
    chardevs = _option(argv, "-chardev")
    assert f"socket,id=ctl,path={tmp_path / 'ctl.sock'},server=on,wait=off" in chardevs
    assert f"file,id=console,path={tmp_path / 'console.log'}" in chardevs
    assert _option(argv, "-mon") == ["chardev=qmp,mode=control"]
    assert all(isinstance(a, str) for a in argv)


def test_kvm_argv(tmp_path):
    argv = qemu_argv(_config(tmp_path, accel="kvm"))
    assert _option(argv, "-accel") == ["kvm"]
    assert _option(argv, "-cpu") == ["host"]
    assert qemu.qemu_cpu(argv) == "host"
    assert qemu.qemu_cpu(["qemu-system-x86_64", "-cpu"]) == qemu.qemu_cpu([]) == ""


def test_unknown_accel_is_refused(tmp_path):
    with pytest.raises(GuestError, match="valid: kvm, tcg"):
        qemu_argv(_config(tmp_path, accel="hvf"))


def test_restore_argv_quotes_the_state_path(tmp_path):
    state = tmp_path / "my states" / "state.zst"
    argv = qemu_argv(_config(tmp_path, incoming_state=state))
    (incoming,) = _option(argv, "-incoming")
    assert incoming == f"exec:zstd -dc '{state}'"
    assert qemu.outgoing_uri(state) == f"exec:zstd -1 -q > '{state}'"


def test_shape_ignores_paths_port_and_name_but_not_topology(tmp_path):
    one = _config(tmp_path)
    other = _config(
        tmp_path / "x",
        kernel_path=one.kernel_path,
        initrd_path=one.initrd_path,
        ssh_port=50000,
        name="g2",
        incoming_state=tmp_path / "state.zst",
    )
    assert shape_argv(one) == shape_argv(other)
    assert shape_argv(one) != shape_argv(replace(one, vcpus=4))
    assert shape_argv(one) != shape_argv(replace(one, memory_mib=4096))
    assert shape_argv(one) != shape_argv(replace(one, accel="kvm"))
    assert shape_argv(one) != shape_argv(replace(one, cmdline_extra=()))


def test_with_pdeathsig_prefers_setpriv():
    argv, preexec = qemu.with_pdeathsig(["qemu", "-x"], "/usr/bin/setpriv")
    assert argv == ["/usr/bin/setpriv", "--pdeathsig", "KILL", "--", "qemu", "-x"]
    assert preexec is None
    argv, preexec = qemu.with_pdeathsig(["qemu", "-x"], None)
    assert argv == ["qemu", "-x"] and preexec is qemu._set_pdeathsig


def test_port_conflict_detection():
    assert qemu.is_port_conflict(
        "qemu-system-x86_64: -netdev user,...: Could not set up host forwarding rule 'tcp:...'"
    )
    assert not qemu.is_port_conflict("qemu-system-x86_64: -drive: Could not open 'x'")


def test_free_port_is_on_loopback_and_bindable():
    import socket

    port = qemu.free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_missing_qemu_names_the_apt_command(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(GuestError, match=r"apt-get install .*qemu-system-x86"):
        qemu.find_qemu()


def test_tail_lines(tmp_path):
    log = tmp_path / "console.log"
    log.write_text("a\n\nb\r\nc\n" + "x\n" * 3)
    assert qemu.tail_lines(log, 3) == "x | x | x"
    assert qemu.tail_lines(tmp_path / "missing") == "(no output)"


# ------------------------------------------------------------- parent death

_HARNESS = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from damon_eval.guest import qemu
    if sys.argv[1] == "preexec":
        qemu.shutil.which = lambda name: None  # force the prctl fallback
    proc = qemu.spawn(["sleep", "600"], Path(sys.argv[2]))
    print(proc.pid, flush=True)
    time.sleep(600)
    """
)


def _gone(pid: int, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split()[2]
        except FileNotFoundError:
            return True
        if state == "Z":  # killed; waiting to be reaped by init
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("mode", ["setpriv", "preexec"])
def test_spawned_process_dies_when_the_harness_is_sigkilled(tmp_path, mode):
    if mode == "setpriv" and shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is not installed")
    with subprocess.Popen(
        [sys.executable, "-c", _HARNESS, mode, str(tmp_path / "child.log")],
        stdout=subprocess.PIPE,
        text=True,
    ) as harness:
        try:
            child_pid = int(harness.stdout.readline())
            assert not _gone(child_pid, 0.2), "the child should run while the harness lives"
            os.kill(harness.pid, signal.SIGKILL)
            harness.wait(timeout=10)
            assert _gone(child_pid), f"child {child_pid} outlived its SIGKILLed harness"
        finally:
            harness.kill()


# ----------------------------------------------------------------- overlays

needs_qemu_img = pytest.mark.skipif(
    shutil.which("qemu-img") is None, reason="qemu-img (qemu-utils) is not installed"
)


@needs_qemu_img
def test_overlay_is_backed_by_the_base_and_leaves_it_alone(tmp_path):
    base = tmp_path / "base.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(base), "64M"], check=True)
    before = base.read_bytes()
    overlay = tmp_path / "run" / "disk.qcow2"
    qemu.create_overlay(base, overlay)
    info = json.loads(
        subprocess.run(
            ["qemu-img", "info", "--output=json", str(overlay)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert info["format"] == "qcow2"
    assert info["backing-filename"] == str(base)
    assert info["backing-filename-format"] == "qcow2"
    assert base.read_bytes() == before


@needs_qemu_img
def test_overlay_on_a_missing_base_fails_clearly(tmp_path):
    with pytest.raises(GuestError, match="cannot create overlay"):
        qemu.create_overlay(tmp_path / "missing.qcow2", tmp_path / "disk.qcow2")


def test_kernel_panic_names_the_oops_and_the_panic(tmp_path):
    console = tmp_path / "console.log"
    assert qemu.kernel_panic(console) is None  # no console yet
    console.write_text("[    1.0] Linux version 6.12\n[    2.0] systemd[1]: Started\n")
    assert qemu.kernel_panic(console) is None
    console.write_text(
        "[    2.08] Oops: int3: 0000 [#1] PREEMPT SMP NOPTI\n"
        "[    2.08] RIP: 0010:sched_clock_cpu+0x9/0x1d0\n"
        "[    2.09] Kernel panic - not syncing: Fatal exception in interrupt\n"
    )
    assert qemu.kernel_panic(console) == (
        "Oops: int3: 0000 [#1] PREEMPT SMP NOPTI; Kernel panic - not syncing: Fatal exception "
        "in interrupt"
    )
    console.write_text("[ 1.0] Kernel panic - not syncing: VFS: Unable to mount root fs\n")
    assert qemu.kernel_panic(console) == "Kernel panic - not syncing: VFS: Unable to mount root fs"


def test_icount_argv_is_single_threaded_tcg(tmp_path):
    argv = qemu_argv(_config(tmp_path, icount="shift=0,sleep=off"))
    # QEMU refuses MTTCG with icount
    assert _option(argv, "-accel") == ["tcg,thread=single"]
    assert _option(argv, "-icount") == ["shift=0,sleep=off"]
    assert _option(argv, "-cpu") == [qemu.TCG_CPU]
    assert "-icount" not in qemu_argv(_config(tmp_path))
    assert "-icount" in shape_argv(_config(tmp_path, icount="shift=auto"))
    with pytest.raises(GuestError, match="-icount shift=auto needs TCG, not kvm"):
        qemu_argv(_config(tmp_path, accel="kvm", icount="shift=auto"))
