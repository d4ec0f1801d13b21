"""Guests on disk: the records a started guest leaves, and what a killed one left.

A guest writes ``<workdir>/guest.json`` (its QEMU pid, ports, paths) and an
``owner.json`` in its socket directory.  ``damon-eval guest boot`` leaves a
guest running (``detach``); later commands find it by name from its record
(:meth:`damon_eval.guest.machine.Guest.attach`).  A harness killed with its
guests leaves records, sockets and overlays behind: the next start sweeps them.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from damon_eval.atomic import atomic_write_json
from damon_eval.errors import GuestError
from damon_eval.paths import cache_dir

GUEST_FILE = "guest.json"
STOPPED_FILE = "guest.stopped.json"
SOCKET_OWNER_FILE = "owner.json"


def guests_dir() -> Path:
    return cache_dir() / "guests"


def pid_is_qemu(pid: int) -> bool:
    try:
        return "qemu" in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
    except OSError:
        return False


def read_record(name: str, workdir: Path) -> dict[str, Any]:
    """The record of guest ``name``; the error lists the running guests."""
    try:
        return json.loads((workdir / GUEST_FILE).read_text())
    except FileNotFoundError:
        running = [g["name"] for g in list_guests() if g.get("alive")]
        raise GuestError(
            f"no guest named {name!r} (looked in {workdir}); running guests: "
            f"{', '.join(running) or 'none'}; start one with `damon-eval guest boot`"
        ) from None


def write_record(workdir: Path, record: dict[str, Any], ssh_config: str) -> None:
    atomic_write_json(workdir / GUEST_FILE, record)
    (workdir / "ssh_config").write_text(ssh_config)


def retire_record(workdir: Path, stopped_at: float) -> None:
    """Rename a stopped guest's record to ``guest.stopped.json``, with the time it stopped."""
    record = workdir / GUEST_FILE
    if record.exists():
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(record.read_text())
            data["stopped_at"] = stopped_at
            atomic_write_json(workdir / STOPPED_FILE, data)
            record.unlink()


def list_guests() -> list[dict[str, Any]]:
    """Records of guests started with a workdir under the cache, with an ``alive`` flag."""
    found = []
    root = guests_dir()
    if not root.is_dir():
        return found
    for record_path in sorted(root.glob(f"*/{GUEST_FILE}")):
        try:
            record = json.loads(record_path.read_text())
        except (OSError, ValueError):
            continue
        pid = record.get("pid", -1)
        record["alive"] = Path(f"/proc/{pid}").exists() and pid_is_qemu(pid)
        found.append(record)
    return found


def _sweep_socket_dirs() -> None:
    """Socket directories (and overlays) of QEMUs that are gone: a run guest's
    harness was killed (its workdir is in a run directory, not under the cache)."""
    for directory in Path(tempfile.gettempdir()).glob("damon-eval-*"):
        try:
            owner = json.loads((directory / SOCKET_OWNER_FILE).read_text())
            pid = int(owner["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not ours, or a launch still writing it
        if Path(f"/proc/{pid}").exists() and pid_is_qemu(pid):
            continue
        if not owner.get("keep_overlay") and owner.get("overlay"):
            Path(owner["overlay"]).unlink(missing_ok=True)
        shutil.rmtree(directory, ignore_errors=True)


def sweep_stale_guests() -> None:
    """Remove what guests killed with their harness left behind (overlays, sockets)."""
    _sweep_socket_dirs()
    for record in list_guests():
        if record["alive"]:
            continue
        workdir = guests_dir() / record["name"]
        shutil.rmtree(record.get("socket_dir", "/nonexistent-damon-eval"), ignore_errors=True)
        if not record.get("keep_overlay"):
            Path(record["overlay"]).unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            (workdir / GUEST_FILE).rename(workdir / "guest.stale.json")
