"""Launching QEMU for a guest: overlay, argv, process, retries, bring-up.

:func:`launch` is the one way to a :class:`~damon_eval.guest.running.RunningGuest`:
:meth:`damon_eval.guest.machine.Guest.start` calls it to boot or restore, and
:mod:`damon_eval.guest.state` to boot the guest it freezes into a saved state.

QEMU is killed by the kernel if the harness dies (parent death signal), so
no QEMU outlives the harness; ``detach=True`` (``damon-eval guest boot``) is
the one exception, by design: it leaves a guest up for ``exec``/``shell``/
``stop``.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import TypeVar

from damon_eval.atomic import atomic_write_json
from damon_eval.errors import GuestError
from damon_eval.guest import detached, keys
from damon_eval.guest.cache import Image
from damon_eval.guest.qemu import (
    MachineConfig,
    create_overlay,
    free_port,
    is_port_conflict,
    kernel_panic,
    qemu_argv,
    spawn,
    tail_lines,
)
from damon_eval.guest.running import RunningGuest

log = logging.getLogger(__name__)

COLD_BOOT_TIMEOUT_S = {"kvm": 120.0, "tcg": 300.0}
RESTORE_TIMEOUT_S = {"kvm": 60.0, "tcg": 120.0}
PORT_ATTEMPTS = 5
TCG_PANIC_RETRIES = 2
"""Cold boots retried after the guest kernel panicked while booting under TCG.

QEMU 7.2's multi-threaded TCG can let a vCPU run kernel text that another vCPU
is patching (``Oops: int3`` in a static-key site such as ``sched_clock_cpu``);
fixed in QEMU 8.1, see docs/guest.md.  A retry boots a fresh overlay."""

G = TypeVar("G", bound=RunningGuest)


def check_topology(vcpus: int, memory_mib: int, pin_cpus: list[int] | None) -> None:
    if not isinstance(vcpus, int) or vcpus < 1:
        raise GuestError(f"vcpus must be a positive integer, got {vcpus!r}")
    if not isinstance(memory_mib, int) or memory_mib < 256:
        raise GuestError(f"memory_mib must be an integer >= 256, got {memory_mib!r}")
    if pin_cpus:
        available = sorted(os.sched_getaffinity(0))
        wrong = [cpu for cpu in pin_cpus if cpu not in available]
        if wrong:
            raise GuestError(
                f"cannot pin vCPUs to host CPU(s) {wrong}: this process may use {available}"
            )


def launch(
    guest_class: type[G] = RunningGuest,  # type: ignore[assignment]
    *,
    image: Image,
    name: str,
    workdir: Path,
    accel: str,
    vcpus: int,
    memory_mib: int,
    keep_overlay: bool,
    detach: bool,
    pin_cpus: list[int] | None,
    qemu_binary: str,
    version: str,
    backing: Path,
    incoming: Path | None,
    state_key: str | None,
    timeout_s: float,
    accel_reason: str = "",
    overlay_name: str = "disk.qcow2",
    owns_workdir: bool = False,
    console_path: Path | None = None,
    icount: str | None = None,
) -> G:
    """Start QEMU on a fresh overlay of ``backing`` and wait until the guest answers SSH.

    ``incoming``: a saved state to restore instead of booting.  Retries on a
    taken SSH port and (cold TCG boots) on a kernel panic; on failure QEMU is
    killed and its sockets removed, its logs kept.  Returns a ``guest_class``
    (:class:`RunningGuest` or a subclass) with its record written.
    """
    started = attempt_started = time.monotonic()
    workdir.mkdir(parents=True, exist_ok=True)
    overlay = workdir / overlay_name
    socket_dir = Path(tempfile.mkdtemp(prefix="damon-eval-"))
    guest: G | None = None
    port_conflicts = panics = 0
    try:
        for attempt in range(1, PORT_ATTEMPTS + TCG_PANIC_RETRIES + 1):
            overlay.unlink(missing_ok=True)  # every attempt boots a pristine disk
            create_overlay(backing.resolve(), overlay)
            port = free_port()
            config = MachineConfig(
                accel=accel,
                vcpus=vcpus,
                memory_mib=memory_mib,
                kernel_path=image.kernel_path,
                initrd_path=image.initrd_path,
                disk_path=overlay,
                ssh_port=port,
                qmp_socket=socket_dir / "qmp.sock",
                control_socket=socket_dir / "ctl.sock",
                console_log=console_path or workdir / "console.log",
                cmdline_extra=image.kernel_cmdline_extra,
                incoming_state=incoming,
                name=name,
                qemu_binary=qemu_binary,
                icount=icount,
            )
            for stale in (config.qmp_socket, config.control_socket, config.console_log):
                stale.unlink(missing_ok=True)
            keys.write_guest_known_hosts(image.known_hosts_path, workdir / "known_hosts", port)
            argv = qemu_argv(config)
            (workdir / "qemu.log").write_text(f"# attempt {attempt}: {argv}\n")
            process = spawn(argv, workdir / "qemu.log", die_with_parent=not detach)
            # Lets the next start sweep this guest's sockets and overlay if our
            # process is killed, also for run guests whose workdir is a run dir.
            atomic_write_json(
                socket_dir / detached.SOCKET_OWNER_FILE,
                {"pid": process.pid, "overlay": str(overlay), "keep_overlay": keep_overlay},
            )
            guest = guest_class(
                name=name, image=image, accel=accel, vcpus=vcpus, memory_mib=memory_mib,
                workdir=workdir, socket_dir=socket_dir, overlay_path=overlay,
                keep_overlay=keep_overlay, boot_kind="restore" if incoming else "cold",
                ssh_port=port, qemu_version=version, pid=process.pid, argv=argv,
                detached=detach, state_key=state_key, process=process,
                accel_reason=accel_reason, owns_workdir=owns_workdir,
                console_path=console_path, icount=icount,
            )  # fmt: skip
            try:
                guest.bring_up(incoming is not None, attempt_started + timeout_s)
                break
            except GuestError:
                output = tail_lines(workdir / "qemu.log", 20)
                guest.kill()
                if is_port_conflict(output) and port_conflicts < PORT_ATTEMPTS - 1:
                    port_conflicts += 1
                    log.info("port %d was taken; retrying with another port", port)
                    continue
                panic = kernel_panic(guest.console_log_path)
                if panic and accel == "tcg" and incoming is None and panics < TCG_PANIC_RETRIES:
                    panics += 1
                    kept = guest.console_log_path.with_name(f"console.attempt{attempt}.log")
                    guest.console_log_path.replace(kept)
                    log.warning(
                        "guest %s: the kernel panicked while booting under TCG (%s), a known "
                        "race of multi-threaded TCG in QEMU before 8.1; booting again on a "
                        "fresh overlay (retry %d of %d; that console is kept in %s)",
                        name, panic, panics, TCG_PANIC_RETRIES, kept,
                    )  # fmt: skip
                    attempt_started = time.monotonic()
                    continue
                raise
        assert guest is not None
        guest.boot_attempts = panics + 1
        guest.boot_seconds = round(time.monotonic() - started, 2)
        if pin_cpus:
            guest.pin_vcpus(pin_cpus)
        guest.write_record()
        return guest
    except BaseException:
        if guest is not None:
            guest.kill()
            guest.cleanup_files(remove_workdir=False)  # keep console.log to debug
        else:
            shutil.rmtree(socket_dir, ignore_errors=True)
            if not keep_overlay:
                overlay.unlink(missing_ok=True)
        raise
