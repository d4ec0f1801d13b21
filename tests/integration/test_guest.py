"""Real guests: build (or reuse) the image, boot under TCG, talk to them, kill the harness.

Slow (minutes): a cold boot under TCG takes 30-60 s.  Skipped, saying why, only
when QEMU or mmdebstrap are missing (or the image is not cached and this is
not root, which building needs).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from damon_eval.errors import GuestError

pytestmark = pytest.mark.guest

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "damon_eval"]
ACCEL = os.environ.get("DAMON_EVAL_TEST_ACCEL", "auto")
CONTROL = "/dev/virtio-ports/org.damon-eval.ctl"


def _missing_tools() -> list[str]:
    return [t for t in ("qemu-system-x86_64", "qemu-img", "mmdebstrap") if not shutil.which(t)]


@pytest.fixture(scope="module")
def image():
    missing = _missing_tools()
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (apt-get install qemu-system-x86 qemu-utils "
                    "mmdebstrap)")  # fmt: skip
    from damon_eval.guest import cached_image, ensure_image, load_spec

    if cached_image(load_spec()) is None and os.geteuid() != 0:
        pytest.skip("the guest image is not cached and building it needs root")
    return ensure_image(progress=False)


def _gone(pid: int, timeout_s: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split()[2]
        except FileNotFoundError:
            return True
        if state == "Z":
            return True
        time.sleep(0.1)
    return False


def _qemu_pids_named(name: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        is_qemu = bool(cmdline) and b"qemu-system" in cmdline[0]
        if is_qemu and f"{name},".encode() in b" ".join(cmdline) and not _gone(int(entry.name), 0):
            pids.append(int(entry.name))
    return pids


def _forget(name: str) -> None:
    """Remove what a named test guest left in the cache (after its QEMU is gone)."""
    from damon_eval.guest.machine import guests_dir, sweep_stale_guests

    sweep_stale_guests()
    shutil.rmtree(guests_dir() / name, ignore_errors=True)


def test_cached_build_is_a_quick_no_op(image):
    started = time.monotonic()
    proc = subprocess.run([*CLI, "guest", "build"], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("cached ") and str(image.path) in proc.stdout
    assert time.monotonic() - started < 5
    manifest = image.manifest()
    assert manifest["kernel_release"].startswith("6.")
    assert (image.path / manifest["package_list"]).read_text().count("\n") > 100
    assert manifest["kernel_config"]["CONFIG_DAMON_SYSFS"] == "y"


def test_cold_boot_commands_files_and_control_channel(image, tmp_path):
    from damon_eval.guest import Guest

    with Guest.start(image, fast_start=False, accel=ACCEL, run_dir=tmp_path / "run") as guest:
        assert guest.boot_kind == "cold"
        assert guest.accel in ("kvm", "tcg")
        result = guest.run("uname -r; echo err >&2; exit 3", timeout_s=30)
        assert (result.exit_status, result.stdout.strip(), result.stderr.strip()) == (
            3,
            image.kernel_release,
            "err",
        )
        # The guest-side timeout ends a command that runs too long.
        started = time.monotonic()
        assert guest.run("sleep 30", timeout_s=2).exit_status == 124
        assert time.monotonic() - started < 20
        # File systems through ShellFs: one SSH command per batch.
        assert guest.fs.read("/proc/sys/kernel/osrelease") == image.kernel_release
        assert guest.fs.exists("/sys/kernel/mm/damon/admin/kdamonds")
        mounts = guest.fs.read("/proc/mounts")
        assert " /sys/kernel/tracing tracefs " in mounts
        assert " /sys/kernel/debug debugfs " in mounts
        # Files both ways.
        local = tmp_path / "hello.txt"
        local.write_text("hello guest\n")
        guest.put(local, "/root/hello.txt")
        guest.get("/root/hello.txt", tmp_path / "back.txt")
        assert (tmp_path / "back.txt").read_text() == "hello guest\n"
        # Control channel, guest -> host and host -> guest.
        guest.run(f"echo done 1.5 > {CONTROL}", timeout_s=10)
        assert guest.control.read_line(timeout_s=10) == "done 1.5"
        waiter = f"nohup sh -c 'head -n1 {CONTROL} > /tmp/got' >/dev/null 2>&1 &"
        guest.run(waiter, timeout_s=10)
        guest.control.send_line("go")
        deadline = time.monotonic() + 15
        while guest.run("cat /tmp/got 2>/dev/null", 10).stdout.strip() != "go":
            assert time.monotonic() < deadline, "the guest never read 'go'"
            time.sleep(0.5)
        facts = guest.facts()
        assert facts["kernel_release"] == image.kernel_release
        assert facts["accel"] == guest.accel and facts["vcpus"] == 2
        assert facts["memory_mib"] == 2048 and facts["image_key"] == image.key
        console = guest.console_log_path
        assert console == tmp_path / "run" / "console.log"
        overlay = guest.overlay_path
        assert overlay.exists() and overlay.parent == tmp_path / "run" / ".guest"
    assert "Linux version" in console.read_text(errors="replace")
    assert not overlay.exists(), "the per-run overlay is deleted afterwards"


def test_fast_start_with_preparation(image, tmp_path):
    from damon_eval.guest import Guest
    from damon_eval.guest.state import states_dir
    from damon_eval.machines.preparation import Preparation

    source = tmp_path / "hello.c"
    # A unique constant makes a new saved state (this test builds one).
    token = f"{time.time_ns()}"
    source.write_text(
        f'#include <stdio.h>\nint main(void) {{ printf("hello {token}\\n"); return 0; }}\n'
    )
    prep = Preparation(
        uploads=((source, "/opt/damon-eval/hello.c"),),
        commands=("gcc -O2 -static -o /opt/damon-eval/hello /opt/damon-eval/hello.c",),
    )
    first_started = time.monotonic()
    with Guest.start(image, accel=ACCEL, preparation=prep) as guest:
        first_total = time.monotonic() - first_started
        assert guest.boot_kind == "restore"
        assert guest.run("/opt/damon-eval/hello", 30).stdout == f"hello {token}\n"
        state_key = guest.state_key
    state_dir = states_dir() / state_key
    booted = state_dir / "booted.qcow2"
    before = (booted.stat().st_size, booted.stat().st_mtime_ns)
    info = json.loads((state_dir / "state.json").read_text())
    assert info["inputs"]["preparation"] == prep.digest()
    for _ in range(2):
        started = time.monotonic()
        with Guest.start(image, accel=ACCEL, preparation=prep) as guest:
            ready_s = time.monotonic() - started
            assert guest.boot_kind == "restore" and guest.state_key == state_key
            # The wall clock is set from the host after a restore.
            guest_now = float(guest.run("date +%s.%N", 10).stdout)
            assert abs(guest_now - time.time()) < 5
            assert guest.run("/opt/damon-eval/hello", 30).exit_status == 0
            guest.run("echo scribble > /root/scribble && sync", 30)
        assert ready_s < first_total, "a restore is faster than boot + save"
    # The disk half of the state never changes.
    assert (booted.stat().st_size, booted.stat().st_mtime_ns) == before
    shutil.rmtree(state_dir)  # made for this test's unique preparation only


def test_guest_check_cli(image):
    proc = subprocess.run(
        [*CLI, "guest", "check", "--json", "--accel", ACCEL],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    caps = json.loads(proc.stdout)
    assert caps["kernel_release"] == image.kernel_release
    assert caps["damon_interface"] == "sysfs"
    assert {"vaddr", "paddr"} <= set(caps["avail_operations"])
    assert {"pageout", "hugepage", "nohugepage", "stat"} <= set(caps["scheme_actions"])
    assert "update_schemes_tried_regions" in caps["state_commands"]
    assert caps["damon_aggregated_tracepoint"] and caps["tracefs_mounted"]
    assert caps["zram_available"] and caps["control_device"]
    assert "madvise" in caps["thp_enabled"]
    assert caps["accel"] in ("kvm", "tcg") and caps["boot_kind"] == "restore"
    if caps["accel"] == "tcg" and ACCEL == "auto":
        assert "falling back to TCG" in proc.stderr


def test_guest_dying_mid_command_raises_naming_guest_and_command(image):
    from damon_eval.guest import Guest

    with Guest.start(image, accel=ACCEL) as guest:
        killer = threading.Timer(2.0, os.kill, (guest.pid, signal.SIGKILL))
        killer.start()
        started = time.monotonic()
        with pytest.raises(GuestError) as excinfo:
            guest.run("sleep 120", timeout_s=200)
        killer.join()
        message = str(excinfo.value)
        assert guest.name in message and "sleep 120" in message and "died" in message
        assert time.monotonic() - started < 30


def test_vcpu_pinning(image):
    from damon_eval.guest import Guest

    cpus = sorted(os.sched_getaffinity(0))
    wanted = [cpus[-1], cpus[0]]
    with Guest.start(image, accel=ACCEL, pin_cpus=wanted) as guest:
        threads = guest.vcpu_threads()
        assert sorted(threads) == [0, 1]
        for index, thread in threads.items():
            assert os.sched_getaffinity(thread) == {wanted[index]}
        assert guest.run("nproc", timeout_s=30).stdout.strip() == "2"


def test_port_conflict_is_retried(image, monkeypatch):
    import socket

    from damon_eval.guest import Guest, machine

    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        offered = iter([taken])
        real_free_port = machine.free_port
        monkeypatch.setattr(machine, "free_port", lambda: next(offered, None) or real_free_port())
        with Guest.start(image, accel=ACCEL) as guest:
            assert guest.ssh_port != taken
            assert guest.run("true", timeout_s=30).exit_status == 0


def test_boot_exec_stop_cli(image):
    name = f"itest{os.getpid()}"
    boot = subprocess.run(
        [*CLI, "guest", "boot", "--name", name, "--accel", ACCEL],
        capture_output=True, text=True, cwd=REPO, timeout=600,
    )  # fmt: skip
    try:
        assert boot.returncode == 0, f"guest boot failed: {boot.stderr}"
        (pid,) = _qemu_pids_named(name)
        run = subprocess.run(
            [*CLI, "guest", "exec", "--name", name, "--", "sh", "-c", "cat /proc/version; exit 4"],
            capture_output=True, text=True, cwd=REPO, timeout=120,
        )  # fmt: skip
        assert run.returncode == 4 and "Linux version" in run.stdout
        again = subprocess.run(
            [*CLI, "guest", "boot", "--name", name, "--accel", ACCEL],
            capture_output=True, text=True, cwd=REPO, timeout=120,
        )  # fmt: skip
        assert again.returncode == 2 and "already running" in again.stderr
    finally:
        stop = subprocess.run(
            [*CLI, "guest", "stop", "--name", name], capture_output=True, text=True, timeout=120
        )
        _forget(name)
    assert stop.returncode == 0, stop.stderr
    assert _gone(pid)


_HARNESS = textwrap.dedent(
    """
    import sys, time
    from damon_eval.guest import Guest, ensure_image
    guest = Guest.start(ensure_image(progress=False), accel=sys.argv[1], name=sys.argv[2])
    print(guest.pid, flush=True)
    time.sleep(600)
    """
)


def test_sigkilled_harness_leaves_no_qemu(image):
    name = f"kill{os.getpid()}"
    harness = subprocess.Popen(
        [sys.executable, "-c", _HARNESS, ACCEL, name], stdout=subprocess.PIPE, text=True, cwd=REPO
    )
    try:
        qemu_pid = int(harness.stdout.readline())
        assert not _gone(qemu_pid, 0)
        os.kill(harness.pid, signal.SIGKILL)
        harness.wait(timeout=10)
        assert _gone(qemu_pid), f"QEMU {qemu_pid} outlived its SIGKILLed harness"
        assert _qemu_pids_named(name) == []
    finally:
        harness.kill()
        _forget(name)


def test_sigkilled_foreground_boot_leaves_no_qemu(image):
    name = f"fg{os.getpid()}"
    boot = subprocess.Popen(
        [*CLI, "guest", "boot", "--foreground", "--name", name, "--accel", ACCEL],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=REPO,
    )
    try:
        line = boot.stdout.readline()
        assert f"guest {name}:" in line, line
        (qemu_pid,) = _qemu_pids_named(name)
        os.kill(boot.pid, signal.SIGKILL)
        boot.wait(timeout=10)
        assert _gone(qemu_pid), f"QEMU {qemu_pid} outlived `damon-eval guest boot --foreground`"
    finally:
        boot.kill()
        _forget(name)
