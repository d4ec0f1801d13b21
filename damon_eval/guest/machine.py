"""Guests: start one (boot or restore from a saved state), or attach to a running one.

::

    with Guest.start(image, vcpus=2, memory_mib=2048, accel="auto",
                     fast_start=True, keep_overlay=False) as guest:
        result = guest.run("uname -r", timeout_s=30)       # CommandResult
        guest.fs.read("/sys/kernel/mm/transparent_hugepage/enabled")
        guest.put("agent.c", "/root/agent.c")
        guest.control.send_line("go"); guest.control.read_line(timeout_s=600)

Each guest writes to a per-run qcow2 overlay (deleted at the end unless
``keep_overlay``).  With ``fast_start`` the guest is restored from a saved
state (:mod:`damon_eval.guest.state`) instead of booted; its wall clock is set
from the host after the restore (see :mod:`damon_eval.guest.running`).  QEMU
itself is started by :func:`damon_eval.guest.launch.launch`; guests left
running (``detach``) are found again through :mod:`damon_eval.guest.detached`.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from damon_eval.errors import GuestError
from damon_eval.guest import accel as accel_mod
from damon_eval.guest import detached
from damon_eval.guest.cache import Image
from damon_eval.guest.launch import (
    COLD_BOOT_TIMEOUT_S,
    RESTORE_TIMEOUT_S,
    check_topology,
    launch,
)
from damon_eval.guest.qemu import QEMU_BINARY, find_qemu, qemu_version
from damon_eval.guest.running import RunningGuest
from damon_eval.guest.state import ensure_saved_state
from damon_eval.machines.preparation import Preparation

__all__ = ["Guest", "Preparation"]

log = logging.getLogger(__name__)


@dataclass
class Guest(RunningGuest):
    """A running QEMU guest.  Make one with :meth:`start` or :meth:`attach`."""

    # ------------------------------------------------------------- starting

    @classmethod
    def start(
        cls,
        image: Image | Path | str,
        *,
        vcpus: int = 2,
        memory_mib: int = 2048,
        accel: str = "auto",
        fast_start: bool = True,
        keep_overlay: bool = False,
        preparation: Preparation | None = None,
        run_dir: Path | None = None,
        name: str | None = None,
        pin_cpus: list[int] | None = None,
        boot_timeout_s: float | None = None,
        detach: bool = False,
        qemu_binary: str = QEMU_BINARY,
        icount: str | None = None,
    ) -> Guest:
        """Boot (or restore) a guest and wait until SSH answers.

        ``run_dir``: the run's directory: the console goes to
        ``<run_dir>/console.log``, the overlay, QEMU's log and SSH files to
        ``<run_dir>/.guest/`` (default: all in ``<cache>/guests/<name>/``).
        ``pin_cpus``: host CPUs for vCPU 0, 1, ...
        ``detach``: the guest survives this process (``damon-eval guest boot``).
        ``icount``: QEMU's ``-icount`` value under TCG (dropped, with a warning, under KVM).
        """
        if not isinstance(image, Image):
            image = Image.load(image)
        check_topology(vcpus, memory_mib, pin_cpus)
        qemu = find_qemu(qemu_binary)
        version = qemu_version(qemu)
        choice = accel_mod.choose_accel(
            accel,
            lambda: accel_mod.cached_probe(
                qemu, version, image.kernel_path, image.initrd_path, image.build_id
            ),
        )
        if choice.warning:
            accel_mod.warn_tcg(choice.warning)
        if icount and choice.accel != "tcg":
            log.warning("-icount %s is for TCG only; the %s guest runs without it", icount,
                        choice.accel)  # fmt: skip
            icount = None
        preparation = preparation or Preparation()
        name = name or f"g{os.getpid()}-{secrets.token_hex(3)}"
        workdir = Path(run_dir) / ".guest" if run_dir is not None else detached.guests_dir() / name
        console_path = Path(run_dir) / "console.log" if run_dir is not None else None
        detached.sweep_stale_guests()
        common = dict(
            image=image, name=name, workdir=workdir, accel=choice.accel, vcpus=vcpus,
            memory_mib=memory_mib, keep_overlay=keep_overlay, detach=detach,
            pin_cpus=pin_cpus, qemu_binary=qemu, version=version,
            accel_reason=choice.reason, owns_workdir=run_dir is None and not detach,
            console_path=console_path, icount=icount,
        )  # fmt: skip
        if fast_start:
            state = ensure_saved_state(
                image,
                vcpus=vcpus,
                memory_mib=memory_mib,
                accel=choice.accel,
                preparation=preparation,
                qemu_binary=qemu,
                qemu_version=version,
                boot_timeout_s=boot_timeout_s,
                icount=icount,
            )
            return launch(
                cls,
                **common,
                backing=state.booted_path,
                incoming=state.state_path,
                state_key=state.key,
                timeout_s=boot_timeout_s or RESTORE_TIMEOUT_S[choice.accel],
            )
        guest = launch(
            cls,
            **common,
            backing=image.disk_path,
            incoming=None,
            state_key=None,
            timeout_s=boot_timeout_s or COLD_BOOT_TIMEOUT_S[choice.accel],
        )
        try:
            preparation.apply(guest)
        except BaseException:
            guest.shutdown()
            raise
        return guest

    # -------------------------------------------------------------- attach

    @classmethod
    def attach(cls, name: str, workdir: Path | None = None) -> Guest:
        """The guest a ``damon-eval guest boot`` left running."""
        workdir = workdir or detached.guests_dir() / name
        record = detached.read_record(name, workdir)
        guest = cls(
            name=record["name"], image=Image.load(record["image"]), accel=record["accel"],
            vcpus=record["vcpus"], memory_mib=record["memory_mib"], workdir=workdir,
            socket_dir=Path(record["socket_dir"]), overlay_path=Path(record["overlay"]),
            keep_overlay=record["keep_overlay"], boot_kind=record["boot_kind"],
            ssh_port=record["ssh_port"], qemu_version=record["qemu_version"],
            pid=record["pid"], argv=record["argv"], detached=True,
            state_key=record.get("state_key"), boot_seconds=record["boot_seconds"],
            boot_attempts=record.get("boot_attempts", 1),
            accel_reason=record.get("accel_reason", ""),
            console_path=Path(record["console_log"]) if record.get("console_log") else None,
            icount=record.get("icount"),
        )  # fmt: skip
        guest._kernel_release = record.get("kernel_release")
        if not guest.is_alive():
            raise GuestError(
                f"guest {name!r} is not running any more (QEMU pid {guest.pid} is gone); "
                f"last console lines: {guest.console_tail()}; clean up with "
                f"`damon-eval guest stop --name {name}`"
            )
        guest.connect_ssh(time.monotonic() + 30.0, what="while reconnecting")
        return guest
