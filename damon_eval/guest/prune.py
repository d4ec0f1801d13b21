"""Removing cached images, saved states and own kernels that no spec needs any more.

An image or state is kept when it belongs to one of the given specs, or when a
running process (a QEMU of this or another harness) names a file inside it on
its command line (``-kernel images/<key>/vmlinuz``, ``-incoming ...states/<key>/``).
A prepared kernel (``kernels/<key>/``: a .deb, build tree or source build of
:mod:`damon_eval.guest.kernel_prepare`) likewise: kept when it is one of the
given specs' kernels or in use; a kernel being prepared (its lock held) is left alone.
"""

from __future__ import annotations

import fcntl
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from damon_eval.guest.cache import images_dir
from damon_eval.guest.kernel_prepare import kernels_dir
from damon_eval.guest.kernels import identity_key
from damon_eval.guest.spec import ImageSpec, image_key
from damon_eval.guest.state import states_dir


@dataclass(frozen=True, slots=True)
class PruneItem:
    path: Path
    reason: str


def _command_lines() -> list[str]:
    lines = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                lines.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode())
            except OSError:
                continue
    return lines


def _in_use(path: Path, command_lines: list[str]) -> bool:
    needle = str(path) + "/"
    return any(needle in line for line in command_lines)


def _lock_is_free(lock: Path) -> bool:
    try:
        with open(lock, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.flock(handle, fcntl.LOCK_UN)
        return True
    except BlockingIOError:
        return False


def plan(keep: list[ImageSpec]) -> list[PruneItem]:
    """What :func:`prune` would remove."""
    keep_keys = {image_key(spec) for spec in keep}
    commands = _command_lines()
    items: list[PruneItem] = []
    kept_builds: set[str] = set()
    root = images_dir()
    if root.is_dir():
        for path in sorted(root.iterdir()):
            if path.name == "logs" or path.name.endswith(".lock"):
                continue
            if path.name.startswith((".build-", ".old-")):
                key = path.name.split("-")[1]
                if _lock_is_free(root / f".{key}.lock"):
                    items.append(PruneItem(path, "left over from an interrupted build"))
                continue
            manifest = path / "manifest.json"
            build_id = None
            if manifest.is_file():
                build_id = json.loads(manifest.read_text()).get("build_id")
            if path.name in keep_keys or _in_use(path, commands):
                if build_id:
                    kept_builds.add(build_id)
                continue
            items.append(PruneItem(path, "image of no kept spec"))
    states = states_dir()
    if states.is_dir():
        for path in sorted(states.iterdir()):
            if path.name.endswith(".lock"):
                continue
            if path.name == "failed":
                items.append(PruneItem(path, "logs of failed state saves"))
                continue
            if path.name.startswith(".build-"):
                key = path.name.split("-")[1]
                if _lock_is_free(states / f".{key}.lock"):
                    items.append(PruneItem(path, "left over from an interrupted save"))
                continue
            try:
                build_id = json.loads((path / "state.json").read_text())["inputs"]["image_build_id"]
            except (OSError, ValueError, KeyError):
                build_id = None
            if build_id in kept_builds or _in_use(path, commands):
                continue
            items.append(PruneItem(path, "saved state of a removed image"))
    items += _plan_kernels(keep, commands)
    return items


def _plan_kernels(keep: list[ImageSpec], commands: list[str]) -> list[PruneItem]:
    root = kernels_dir()
    if not root.is_dir():
        return []
    keep_keys = {identity_key(spec.kernel.identity()) for spec in keep if spec.kernel is not None}
    items: list[PruneItem] = []
    for path in sorted(root.iterdir()):
        if path.name == "logs" or path.name.endswith(".lock"):
            continue  # build logs stay, as the images' do
        if path.name.startswith(".work-"):
            key = path.name.split("-")[1]
            if _lock_is_free(root / f".{key}.lock"):
                items.append(PruneItem(path, "left over from an interrupted kernel preparation"))
            continue
        if not path.is_dir() or path.name in keep_keys or _in_use(path, commands):
            continue
        if not _lock_is_free(root / f".{path.name}.lock"):
            continue  # being prepared again right now
        items.append(PruneItem(path, "kernel of no kept spec"))
    return items


def prune(keep: list[ImageSpec], dry_run: bool = False) -> list[PruneItem]:
    items = plan(keep)
    if not dry_run:
        for item in items:
            shutil.rmtree(item.path, ignore_errors=True)
    return items
