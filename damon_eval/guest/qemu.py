"""QEMU command lines, disks and processes (no SSH, no guest logic here).

Every QEMU is started from an argv list (never a shell string) by
:func:`spawn`, which makes the kernel kill it when the harness dies (parent
death signal via ``setpriv --pdeathsig KILL``, or ``prctl`` in the child when
setpriv is missing), so that no QEMU outlives the harness, even one killed by
SIGKILL.
"""

from __future__ import annotations

import ctypes
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from damon_eval.errors import GuestError

QEMU_BINARY = "qemu-system-x86_64"
APT_QEMU = "sudo apt-get install -y --no-install-recommends qemu-system-x86 qemu-utils"
CONTROL_PORT_NAME = "org.damon-eval.ctl"
GUEST_CONTROL_DEVICE = f"/dev/virtio-ports/{CONTROL_PORT_NAME}"
# The harness's part of the kernel command line; the image spec may append more.
BASE_CMDLINE = (
    "root=/dev/vda",
    "rw",
    "console=ttyS0",
    "net.ifnames=0",
    "panic=-1",
    "oops=panic",
    # The harness reaches sshd over TCP; systemd's ssh generator would probe
    # AF_VSOCK at every boot (loads vsock/vmci modules: ~3 s under TCG).
    "systemd.ssh_auto=no",
    # Debian's 7.x kernels start DAMON_STAT's kdamond at boot, exclusively: every
    # sysfs kdamond would then fail to start with EBUSY.  Older kernels ignore it.
    "damon_stat.enabled=N",
)
PR_SET_PDEATHSIG = 1


@dataclass(frozen=True, slots=True)
class MachineConfig:
    """Everything that decides a QEMU command line."""

    accel: str  # "kvm" | "tcg"
    vcpus: int
    memory_mib: int
    kernel_path: Path
    initrd_path: Path | None  # None: the kernel mounts its root disk by itself
    disk_path: Path
    ssh_port: int
    qmp_socket: Path
    control_socket: Path
    console_log: Path
    cmdline_extra: tuple[str, ...] = ()
    incoming_state: Path | None = None
    name: str = "damon-eval"
    qemu_binary: str = QEMU_BINARY
    icount: str | None = None  # TCG only: QEMU's -icount value (forces single-threaded TCG)


def kernel_cmdline(extra: tuple[str, ...] = ()) -> str:
    return " ".join((*BASE_CMDLINE, *extra))


def incoming_uri(state_path: Path) -> str:
    return f"exec:zstd -dc {shlex.quote(str(state_path))}"


def outgoing_uri(state_path: Path) -> str:
    return f"exec:zstd -1 -q > {shlex.quote(str(state_path))}"


# TCG's CPU: everything QEMU emulates, less SSE4a.  QEMU 7.2's "max" advertises it, and
# PARSEC's x264 (2009) takes SSE4a for an AMD CPU with fast LZCNT/misaligned SSE and
# takes asm paths that crash with SIGSEGV under TCG (docs/workloads.md).  Intel CPUs never
# had SSE4a, so no workload can depend on it.
TCG_CPU = "max,-sse4a"


def qemu_cpu(argv: list[str]) -> str:
    """The ``-cpu`` model of a QEMU command line ("" when it names none)."""
    return argv[argv.index("-cpu") + 1] if "-cpu" in argv[:-1] else ""


def qemu_argv(config: MachineConfig) -> list[str]:
    """The QEMU command line for ``config``."""
    if config.accel not in ("kvm", "tcg"):
        raise GuestError(f"unknown accelerator {config.accel!r}; valid: kvm, tcg")
    if config.icount and config.accel != "tcg":
        raise GuestError(f"-icount {config.icount} needs TCG, not {config.accel}")
    if config.accel == "kvm":
        accel = ["-accel", "kvm", "-cpu", "host"]
    elif config.icount:
        # QEMU refuses MTTCG with icount ("No MTTCG when icount is enabled").
        accel = ["-accel", "tcg,thread=single", "-cpu", TCG_CPU, "-icount", config.icount]
    else:
        accel = ["-accel", "tcg,thread=multi", "-cpu", TCG_CPU]
    # fmt: off
    argv = [
        config.qemu_binary,
        "-name", f"{config.name},debug-threads=on",
        "-nodefaults", "-no-user-config", "-no-reboot",
        "-display", "none",
        "-machine", "q35",
        *accel,
        "-smp", str(config.vcpus),
        "-m", f"{config.memory_mib}M",
        "-kernel", str(config.kernel_path),
        *(["-initrd", str(config.initrd_path)] if config.initrd_path is not None else []),
        "-append", kernel_cmdline(config.cmdline_extra),
        "-drive", f"file={config.disk_path},if=none,id=disk0,format=qcow2,discard=unmap",
        "-device", "virtio-blk-pci,drive=disk0",
        "-netdev",
        f"user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:{config.ssh_port}-:22",
        "-device", "virtio-net-pci,netdev=net0",
        "-object", "rng-random,id=rng0,filename=/dev/urandom",
        "-device", "virtio-rng-pci,rng=rng0",
        "-chardev", f"file,id=console,path={config.console_log}",
        "-serial", "chardev:console",
        "-chardev", f"socket,id=qmp,path={config.qmp_socket},server=on,wait=off",
        "-mon", "chardev=qmp,mode=control",
        "-device", "virtio-serial-pci,id=vser0",
        "-chardev", f"socket,id=ctl,path={config.control_socket},server=on,wait=off",
        "-device",
        f"virtserialport,bus=vser0.0,chardev=ctl,name={CONTROL_PORT_NAME}",
    ]
    # fmt: on
    if config.incoming_state is not None:
        argv += ["-incoming", incoming_uri(config.incoming_state)]
    return argv


def shape_argv(config: MachineConfig) -> list[str]:
    """The argv with per-run values (paths, port, name) replaced by placeholders.

    A saved state can only be restored by a QEMU with the same devices and
    options; this is the part of the argv that must match (it goes into the
    saved-state key).  The kernel and initrd stay: they belong to the image.
    """
    neutral = replace(
        config,
        disk_path=Path("@DISK@"),
        ssh_port=0,
        qmp_socket=Path("@QMP@"),
        control_socket=Path("@CTL@"),
        console_log=Path("@CONSOLE@"),
        incoming_state=None,
        name="@NAME@",
    )
    return qemu_argv(neutral)


# ------------------------------------------------------------------- tools


def find_qemu(binary: str = QEMU_BINARY) -> str:
    path = shutil.which(binary)
    if path is None:
        raise GuestError(f"{binary} is not installed; install it with: {APT_QEMU}")
    return path


def qemu_version(binary: str = QEMU_BINARY) -> str:
    """``7.2.22 (Debian 1:7.2+dfsg-...)``: goes into saved-state and probe keys."""
    try:
        out = subprocess.run(
            [find_qemu(binary), "--version"], capture_output=True, text=True, timeout=20
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise GuestError(f"cannot run {binary} --version: {exc}") from exc
    match = re.search(r"version (\S+(?: \([^)]*\))?)", out)
    return match.group(1) if match else out.strip().splitlines()[0]


def create_overlay(backing: Path, overlay: Path) -> None:
    """A qcow2 overlay on ``backing``; writes go to the overlay only."""
    if shutil.which("qemu-img") is None:
        raise GuestError(f"qemu-img is not installed; install it with: {APT_QEMU}")
    overlay.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(backing), "-F", "qcow2",
         str(overlay)],
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    if proc.returncode != 0:
        raise GuestError(f"cannot create overlay {overlay} on {backing}: {proc.stderr.strip()}")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (QEMU may still lose a race)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def is_port_conflict(qemu_output: str) -> bool:
    return bool(
        re.search(r"host forwarding rule|Address already in use|Could not set up host", qemu_output)
    )


_PANIC = re.compile(r"Kernel panic - not syncing:.*")
_OOPS = re.compile(r"Oops: [^\r\n]*|BUG: [^\r\n]*|RIP: 0010:[^\r\n]*")


def kernel_panic(console_log: Path) -> str | None:
    """The guest kernel's panic (with the oops that led to it) if the console shows one."""
    text = read_tail(console_log, 65536)
    if text is None:
        return None
    panic = _PANIC.search(text)
    if panic is None:
        return None
    oops = _OOPS.search(text)
    return f"{oops.group(0).strip()}; {panic.group(0).strip()}" if oops else panic.group(0).strip()


# --------------------------------------------------------------- processes


def _set_pdeathsig() -> None:
    """In the child before exec: SIGKILL when the parent dies (fallback without setpriv)."""
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def with_pdeathsig(argv: list[str], setpriv: str | None) -> tuple[list[str], Callable | None]:
    """argv (and a preexec function) so the process is SIGKILLed when the harness dies."""
    if setpriv is not None:
        return [setpriv, "--pdeathsig", "KILL", "--", *argv], None
    return argv, _set_pdeathsig


def spawn(argv: list[str], log_path: Path, *, die_with_parent: bool = True) -> subprocess.Popen:
    """Start QEMU with its stdout/stderr in ``log_path``.

    ``die_with_parent=False`` (``damon-eval guest boot`` in the background)
    starts it in its own session so it survives the command.
    """
    if die_with_parent:
        argv, preexec = with_pdeathsig(argv, shutil.which("setpriv"))
    else:
        preexec = None
    with open(log_path, "ab") as log_handle:
        try:
            return subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log_handle,
                stderr=subprocess.STDOUT,
                preexec_fn=preexec,  # only prctl; see _set_pdeathsig
                start_new_session=not die_with_parent,
                close_fds=True,
            )
        except OSError as exc:
            raise GuestError(f"cannot start {argv[0]}: {exc}") from exc


def read_tail(path: Path, max_bytes: int) -> str | None:
    """The last ``max_bytes`` of a text file (None if it cannot be read)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - max_bytes))
            return handle.read().decode(errors="replace")
    except OSError:
        return None


def tail_lines(path: Path, count: int = 8) -> str:
    """The last ``count`` non-empty lines of a text file, joined with ' | '."""
    text = read_tail(path, 16384)
    if text is None:
        return "(no output)"
    lines = [line.strip() for line in text.replace("\r", "\n").splitlines() if line.strip()]
    return " | ".join(lines[-count:]) or "(empty)"
