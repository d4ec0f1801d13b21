"""The guest image cache: finished images, their manifests, and the build lock.

Layout (``damon_eval.paths.cache_dir()/images``)::

    <key>/base.qcow2  vmlinuz  initrd.img  kernel.config  packages.txt
          manifest.json  build.log  known_hosts  ssh/id_ed25519{,.pub}
    logs/<key>-<time>.log      every build's log (kept; named in errors)

``initrd.img`` is absent when the image's kernel has its root disk's drivers
built in (manifest ``initramfs: false``); QEMU then boots without ``-initrd``.
Building is :mod:`damon_eval.guest.build`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from damon_eval.errors import GuestError
from damon_eval.guest.spec import ImageSpec, image_key
from damon_eval.paths import cache_dir

log = logging.getLogger(__name__)

MANIFEST_VERSION = 2


def images_dir() -> Path:
    return cache_dir() / "images"


@dataclass(frozen=True, slots=True)
class Image:
    """A built image in the cache."""

    path: Path

    @property
    def disk_path(self) -> Path:
        return self.path / "base.qcow2"

    @property
    def kernel_path(self) -> Path:
        return self.path / "vmlinuz"

    @property
    def has_initramfs(self) -> bool:
        return bool(self.manifest().get("initramfs", True))

    @property
    def initrd_path(self) -> Path | None:
        """The initramfs QEMU loads, or None for a kernel that boots without one."""
        return self.path / "initrd.img" if self.has_initramfs else None

    @property
    def manifest_path(self) -> Path:
        return self.path / "manifest.json"

    @property
    def known_hosts_path(self) -> Path:
        return self.path / "known_hosts"

    @property
    def client_key_path(self) -> Path:
        return self.path / "ssh" / "id_ed25519"

    @property
    def packages_path(self) -> Path:
        return self.path / "packages.txt"

    def manifest(self) -> dict[str, Any]:
        return json.loads(self.manifest_path.read_text())

    @property
    def key(self) -> str:
        return self.manifest()["key"]

    @property
    def build_id(self) -> str:
        return self.manifest()["build_id"]

    @property
    def kernel_release(self) -> str:
        return self.manifest()["kernel_release"]

    @property
    def kernel_cmdline_extra(self) -> tuple[str, ...]:
        return tuple(self.manifest()["spec"]["kernel_cmdline"])

    @classmethod
    def load(cls, path: Path | str) -> Image:
        """An image directory, checked for completeness."""
        image = cls(Path(path))
        required = [
            image.disk_path,
            image.kernel_path,
            image.manifest_path,
            image.known_hosts_path,
            image.client_key_path,
        ]
        missing = [p.name for p in required if not p.is_file()]
        if not missing and image.initrd_path is not None and not image.initrd_path.is_file():
            missing.append(image.initrd_path.name)
        if missing:
            raise GuestError(
                f"image {image.path} is incomplete (missing {', '.join(missing)}); "
                "run `damon-eval guest build --force`"
            )
        return image


def cached_image(spec: ImageSpec) -> Image | None:
    """The cached image for ``spec``, if it was built."""
    path = images_dir() / image_key(spec)
    if (path / "manifest.json").is_file():
        return Image.load(path)
    return None


def list_images() -> list[Image]:
    """Complete images in the cache, newest first."""
    root = images_dir()
    if not root.is_dir():
        return []
    found = [
        Image(p)
        for p in root.iterdir()
        if not p.name.startswith(".") and (p / "manifest.json").is_file()
    ]
    return sorted(found, key=lambda i: i.manifest_path.stat().st_mtime, reverse=True)


@contextlib.contextmanager
def locked(lock_path: Path, what: str) -> Iterator[None]:
    """An exclusive lock on ``lock_path``; says so when it has to wait."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.warning("waiting for another process building %s", what)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def replace_dir(new: Path, final: Path) -> None:
    """Move a finished build into place, replacing what was there."""
    if final.exists():
        old = final.with_name(f".old-{final.name}-{secrets.token_hex(4)}")
        final.rename(old)
        new.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        new.rename(final)
