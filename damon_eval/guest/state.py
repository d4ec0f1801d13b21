"""Saved guest states for fast starts.

A saved state is a booted, prepared, idle guest frozen to disk once per
(image build, vCPUs, memory, accelerator, preparation, QEMU version, QEMU
device argv):

``states/<key>/booted.qcow2``
    the disk half: an overlay on the image that the booted guest wrote to.
    It must never change afterwards (it is made read-only); every run gets
    its own overlay on top of it.
``states/<key>/state.zst``
    the RAM and device half: QMP ``migrate`` to ``exec:zstd -1 -q > ...``.
``states/<key>/state.json``
    the key's ingredients and timings.

Making one: boot cold on ``booted.qcow2``, apply the preparation (uploads,
commands), ``sync`` and drop caches, close SSH, QMP ``stop`` + ``migrate``,
poll ``query-migrate`` until completed, ``quit``.  Restoring: QEMU with the same
argv (other paths and ports) plus ``-incoming "exec:zstd -dc state.zst"``,
then ``cont`` (see :meth:`damon_eval.guest.running.RunningGuest.bring_up`).
It is built in a temporary directory and renamed into place under a lock.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from damon_eval.atomic import atomic_write_json
from damon_eval.errors import GuestError
from damon_eval.guest.cache import Image, locked
from damon_eval.guest.detached import STOPPED_FILE
from damon_eval.guest.launch import COLD_BOOT_TIMEOUT_S, launch
from damon_eval.guest.qemu import MachineConfig, outgoing_uri, shape_argv
from damon_eval.guest.qmp import QmpClient
from damon_eval.guest.running import RunningGuest
from damon_eval.machines.page_cache import DROP_CACHES_COMMAND
from damon_eval.machines.preparation import Preparation
from damon_eval.paths import cache_dir

log = logging.getLogger(__name__)

STATE_FORMAT = 1
SAVE_TIMEOUT_S = 300.0
# Run in the guest just before saving: start from an empty page cache, flushed.
SETTLE_COMMAND = f"{DROP_CACHES_COMMAND} && sync"


def states_dir() -> Path:
    return cache_dir() / "states"


@dataclass(frozen=True, slots=True)
class SavedState:
    path: Path

    @property
    def key(self) -> str:
        return self.path.name

    @property
    def booted_path(self) -> Path:
        return self.path / "booted.qcow2"

    @property
    def state_path(self) -> Path:
        return self.path / "state.zst"

    @property
    def info_path(self) -> Path:
        return self.path / "state.json"

    def info(self) -> dict[str, Any]:
        return json.loads(self.info_path.read_text())

    def problem(self) -> str | None:
        """Why this state cannot be used (None when it can)."""
        for path in (self.booted_path, self.state_path, self.info_path):
            if not path.is_file():
                return f"{path.name} is missing"
        info = self.info()
        stat = self.booted_path.stat()
        if (stat.st_size, stat.st_mtime_ns) != (info["booted_size"], info["booted_mtime_ns"]):
            return "booted.qcow2 changed after the state was saved"
        return None


def shape_for(
    image: Image,
    vcpus: int,
    memory_mib: int,
    accel: str,
    qemu_binary: str,
    icount: str | None = None,
) -> list[str]:
    """The QEMU argv shape a saved state belongs to (paths and port neutral)."""
    return shape_argv(
        MachineConfig(
            accel=accel,
            vcpus=vcpus,
            memory_mib=memory_mib,
            kernel_path=image.kernel_path,
            initrd_path=image.initrd_path,
            disk_path=Path("-"),
            ssh_port=0,
            qmp_socket=Path("-"),
            control_socket=Path("-"),
            console_log=Path("-"),
            cmdline_extra=image.kernel_cmdline_extra,
            qemu_binary=os.path.basename(qemu_binary),
            icount=icount,
        )
    )


def state_key_inputs(
    image: Image,
    *,
    vcpus: int,
    memory_mib: int,
    accel: str,
    preparation_digest: str,
    qemu_binary: str,
    qemu_version: str,
    icount: str | None = None,
) -> dict[str, Any]:
    manifest = image.manifest()
    inputs = {
        "format": STATE_FORMAT,
        "image_key": manifest["key"],
        "image_build_id": manifest["build_id"],
        "vcpus": vcpus,
        "memory_mib": memory_mib,
        "accel": accel,
        "preparation": preparation_digest,
        "qemu_version": qemu_version,
        "argv_shape": shape_for(image, vcpus, memory_mib, accel, qemu_binary, icount),
        "settle": SETTLE_COMMAND,
    }
    if icount:  # only then: keys of states without icount stay as they were
        inputs["icount"] = icount
    return inputs


def state_key(inputs: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]


def ensure_saved_state(
    image: Image,
    *,
    vcpus: int,
    memory_mib: int,
    accel: str,
    preparation: Preparation,
    qemu_binary: str,
    qemu_version: str,
    boot_timeout_s: float | None = None,
    icount: str | None = None,
) -> SavedState:
    """The saved state for these parameters, made (one cold boot) if missing or broken."""
    inputs = state_key_inputs(
        image,
        vcpus=vcpus,
        memory_mib=memory_mib,
        accel=accel,
        preparation_digest=preparation.digest(),
        qemu_binary=qemu_binary,
        qemu_version=qemu_version,
        icount=icount,
    )
    key = state_key(inputs)
    final = SavedState(states_dir() / key)
    if final.path.is_dir() and final.problem() is None:
        return final
    with locked(states_dir() / f".{key}.lock", f"saved state {key}"):
        if final.path.is_dir():
            problem = final.problem()
            if problem is None:
                return final
            log.warning("saved state %s is unusable (%s); making it again", key, problem)
            shutil.rmtree(final.path)
        for stale in states_dir().glob(f".build-{key}-*"):
            shutil.rmtree(stale, ignore_errors=True)
        staging = states_dir() / f".build-{key}-{secrets.token_hex(4)}"
        try:
            _make_state(
                image, staging, inputs, key, preparation, qemu_binary, qemu_version,
                boot_timeout_s,
            )  # fmt: skip
            staging.rename(final.path)
        except BaseException as exc:
            kept = _keep_failure_logs(staging, key)
            shutil.rmtree(staging, ignore_errors=True)
            if isinstance(exc, GuestError) and kept is not None:
                raise GuestError(f"{exc} (logs kept in {kept})") from exc
            raise
    return final


def _make_state(
    image: Image,
    staging: Path,
    inputs: dict[str, Any],
    key: str,
    preparation: Preparation,
    qemu_binary: str,
    qemu_version: str,
    boot_timeout_s: float | None,
) -> None:
    accel = inputs["accel"]
    log.info("making saved state %s (one cold boot)", key)
    started = time.monotonic()
    guest = launch(
        image=image,
        name=f"save-{key[:8]}",
        workdir=staging,
        accel=accel,
        vcpus=inputs["vcpus"],
        memory_mib=inputs["memory_mib"],
        keep_overlay=True,
        detach=False,
        pin_cpus=None,
        qemu_binary=qemu_binary,
        version=qemu_version,
        backing=image.disk_path,
        incoming=None,
        state_key=None,
        timeout_s=boot_timeout_s or COLD_BOOT_TIMEOUT_S[accel],
        accel_reason="saved-state boot",
        overlay_name="booted.qcow2",
        icount=inputs.get("icount"),
    )
    try:
        boot_seconds, boot_attempts = guest.boot_seconds, guest.boot_attempts
        preparation.apply(guest)
        settle = guest.run(SETTLE_COMMAND, timeout_s=120)
        if settle.exit_status != 0:
            raise GuestError(f"cannot settle guest before saving: {settle.stderr.strip()}")
        save_seconds = save_guest_state(guest, staging / "state.zst")
    finally:
        guest.shutdown(clean=False)
    booted = staging / "booted.qcow2"
    os.chmod(booted, 0o444)
    stat = booted.stat()
    atomic_write_json(
        staging / "state.json",
        {
            "key": key,
            "inputs": inputs,
            "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "boot_seconds": boot_seconds,
            "boot_attempts": boot_attempts,
            "save_seconds": save_seconds,
            "total_seconds": round(time.monotonic() - started, 2),
            "state_bytes": (staging / "state.zst").stat().st_size,
            "booted_size": stat.st_size,
            "booted_mtime_ns": stat.st_mtime_ns,
        },
    )
    (staging / STOPPED_FILE).unlink(missing_ok=True)


def _keep_failure_logs(staging: Path, key: str) -> Path | None:
    """Move the console and QEMU logs of a failed save out of the staging directory."""
    logs = [p for p in staging.glob("*.log") if p.is_file()]  # console(.attemptN), qemu
    if not logs:
        return None
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    target = states_dir() / "failed" / f"{key}-{stamp}"
    target.mkdir(parents=True, exist_ok=True)
    for path in logs:
        shutil.move(str(path), target / path.name)
    return target


def save_guest_state(
    guest: RunningGuest, state_path: Path, timeout_s: float = SAVE_TIMEOUT_S
) -> float:
    """Freeze ``guest`` into ``state_path`` (QMP stop + migrate); QEMU quits afterwards."""
    started = time.monotonic()
    guest.close_channels()
    partial = state_path.with_name(state_path.name + ".partial")
    with QmpClient.connect(guest.qmp_socket, 10.0, alive=guest.is_alive) as qmp:
        qmp.command("stop")
        qmp.command("migrate", uri=outgoing_uri(partial))
        deadline = time.monotonic() + timeout_s
        while True:
            info = qmp.command("query-migrate")
            status = info.get("status")
            if status == "completed":
                break
            if status in ("failed", "cancelled"):
                raise GuestError(
                    f"saving the state of guest {guest.name} failed: "
                    f"{info.get('error-desc', status)}"
                )
            if time.monotonic() >= deadline:
                raise GuestError(f"saving the state of guest {guest.name} took over {timeout_s} s")
            time.sleep(0.1)
        qmp.command("quit")
    guest.wait_exit(30)
    if not partial.is_file() or partial.stat().st_size == 0:
        raise GuestError(f"saving the state of guest {guest.name} wrote nothing to {partial}")
    # "completed" can precede the end of the zstd child's output: check the frame.
    check = subprocess.run(["zstd", "-q", "-t", str(partial)], capture_output=True, text=True)
    if check.returncode != 0:
        raise GuestError(
            f"the saved state {partial} of guest {guest.name} is damaged: {check.stderr.strip()}"
        )
    partial.rename(state_path)
    return round(time.monotonic() - started, 2)


def list_states() -> list[SavedState]:
    root = states_dir()
    if not root.is_dir():
        return []
    return [
        SavedState(p)
        for p in sorted(root.iterdir())
        if p.is_dir() and not p.name.startswith(".") and p.name != "failed"
    ]
