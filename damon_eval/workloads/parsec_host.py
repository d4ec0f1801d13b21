"""Build PARSEC once on the host, in a chroot of the guest image's own root file system.

Under TCG, ``parsecmgmt -a build`` inside the guest runs gcc emulated, 5-30 times
slower than natively: the 25 packages would take hours.  The guest image's
root file system (read out of its disk with ``debugfs -R rdump``, no loop
mount needed) has the same gcc, libraries and paths as the booted guest, so a
build there, at the guest's own ``guest_root``, gives the binaries the guest
would have built.  The built tree is packed into one archive under
``<cache>/parsec/built/<key>/``, keyed by the PARSEC source, the package list,
the image's installed packages, the build configuration and the patches; the guest preparation
then only unpacks it.  Package build failures are recorded per package
(``.damon-eval-build/<pkg>.failed`` and ``<pkg>.log`` in the tree), exactly as
in a guest build, so they fail only that package's runs.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from damon_eval.atomic import atomic_write_json
from damon_eval.errors import ConfigError, GuestError
from damon_eval.workloads.parsec_source import parsec_cache, source_digest

BUILD_MODES = ("auto", "host", "guest")
HOST_BUILD_TOOLS = ("qemu-img", "debugfs", "chroot", "mount", "umount", "tar", "zstd")
ARCHIVE_NAME = "parsec-built.tar.zst"
LOG_TAIL_LINES = 20


def resolve_build_mode(mode: str) -> str:
    """``host`` or ``guest``: ``auto`` builds on the host when it can (root and its tools)."""
    if mode not in BUILD_MODES:
        raise ConfigError(f"parsec.build {mode!r} is not one of {', '.join(BUILD_MODES)}")
    if mode != "auto":
        return mode
    return "host" if not missing_host_tools() else "guest"


def missing_host_tools() -> list[str]:
    """Why a host build cannot run here (empty: it can)."""
    missing = [tool for tool in HOST_BUILD_TOOLS if shutil.which(tool) is None]
    if os.geteuid() != 0:
        missing.insert(0, "root (chroot and mount need it)")
    return missing


def host_build_key(
    *,
    source: str,
    packages: Sequence[str],
    image_userland: str,
    guest_root: str,
    bldconf: str,
    patches: Sequence[tuple[str, str]],
) -> str:
    """16 hex digits that change with anything that changes the built binaries."""
    identity = {
        "source": source,
        "packages": sorted(packages),
        "image_userland": image_userland,
        "guest_root": guest_root,
        "bldconf": bldconf,
        "patches": sorted(patches),
        "layout": 2,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def built_dir(key: str) -> Path:
    return parsec_cache() / "built" / key


@dataclass(frozen=True, slots=True)
class HostBuild:
    """A PARSEC tree built on the host: the archive to upload and what was built."""

    key: str
    directory: Path
    summary: dict[str, Any]

    @property
    def archive(self) -> Path:
        return self.directory / ARCHIVE_NAME

    def package(self, name: str) -> dict[str, Any]:
        return self.summary["packages"][name]

    @classmethod
    def load(cls, key: str) -> HostBuild | None:
        directory = built_dir(key)
        summary_path = directory / "build.json"
        if not summary_path.is_file() or not (directory / ARCHIVE_NAME).is_file():
            return None
        return cls(key, directory, json.loads(summary_path.read_text()))


@contextlib.contextmanager
def _mounted(rootfs: Path) -> Iterator[None]:
    """/proc and /dev in the chroot for the build, unmounted whatever happens."""
    mounted: list[Path] = []
    try:
        for argv, target in (
            (["mount", "-t", "proc", "proc"], rootfs / "proc"),
            (["mount", "--rbind", "/dev"], rootfs / "dev"),
        ):
            target.mkdir(parents=True, exist_ok=True)
            subprocess.run([*argv, str(target)], check=True, capture_output=True)
            mounted.append(target)
        yield
    finally:
        for target in reversed(mounted):
            subprocess.run(["umount", "-R", "-l", str(target)], capture_output=True)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _run(argv: list[str], log, what: str) -> None:
    log.write(f"$ {' '.join(argv)}\n")
    log.flush()
    result = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        raise GuestError(
            f"PARSEC host build: {what} failed (exit {result.returncode}); see {log.name}"
        )


def extract_rootfs(disk_qcow2: Path, rootfs: Path, log) -> None:
    """The image's root file system as a directory, without mounting its disk."""
    raw = rootfs.with_name("disk.raw")
    try:
        _run(["qemu-img", "convert", "-O", "raw", str(disk_qcow2), str(raw)], log, "qemu-img")
        rootfs.mkdir(parents=True)
        _run(["debugfs", "-R", f"rdump / {rootfs}", str(raw)], log, "debugfs rdump")
    finally:
        raw.unlink(missing_ok=True)
    if not (rootfs / "usr" / "bin").is_dir():
        raise GuestError(f"PARSEC host build: {disk_qcow2} did not yield a root file system")


def unpack_source(source: Path, target: Path) -> None:
    """A tree or tarball (one top directory or none) into ``target``."""
    if source.is_dir():
        shutil.copytree(source, target, symlinks=True)
        return
    scratch = target.with_name(target.name + ".unpack")
    scratch.mkdir(parents=True)
    with tarfile.open(source) as archive:
        archive.extractall(scratch, filter="fully_trusted")
    top = scratch if (scratch / "bin" / "parsecmgmt").is_file() else None
    if top is None:
        entries = list(scratch.iterdir())
        if len(entries) == 1 and (entries[0] / "bin" / "parsecmgmt").is_file():
            top = entries[0]
    if top is None:
        raise ConfigError(f"{source} has no bin/parsecmgmt at its top or in one top directory")
    target.parent.mkdir(parents=True, exist_ok=True)
    top.rename(target)
    shutil.rmtree(scratch, ignore_errors=True)


def build_on_host(
    *,
    key: str,
    source: Path,
    disk_qcow2: Path,
    guest_root: str,
    uploads: Sequence[tuple[Path, str]],
    setup_command: str,
    package_commands: Sequence[tuple[str, str]],
    identity: dict[str, Any],
    progress: Callable[[str], None] = print,
) -> HostBuild:
    """Build every package of ``package_commands`` (name, guest sh) in a chroot of the
    image; cached under :func:`built_dir`.  ``uploads`` are (host file, guest path) the
    commands read (build configuration, patches)."""
    cached = HostBuild.load(key)
    if cached is not None:
        return cached
    missing = missing_host_tools()
    if missing:
        raise GuestError(
            f"building PARSEC on the host needs {', '.join(missing)}; run as root with "
            "qemu-utils and e2fsprogs installed, or set parsec.build: guest"
        )
    final = built_dir(key)
    with _locked(final.with_name(f".{key}.lock")):
        cached = HostBuild.load(key)
        if cached is not None:
            return cached
        work = final.with_name(f".work-{key}-{os.getpid()}")
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        try:
            return _build(
                key, work, final, source, disk_qcow2, guest_root, uploads,
                setup_command, package_commands, identity, progress,
            )  # fmt: skip
        finally:
            shutil.rmtree(work, ignore_errors=True)


def _build(
    key, work, final, source, disk_qcow2, guest_root, uploads, setup_command,
    package_commands, identity, progress,
) -> HostBuild:  # fmt: skip
    started = time.monotonic()
    rootfs = work / "rootfs"
    log_path = work / "build.log"
    with open(log_path, "w") as log:
        progress(f"parsec build: reading the guest image's root file system from {disk_qcow2}")
        extract_rootfs(disk_qcow2, rootfs, log)
        tree = rootfs / guest_root.lstrip("/")
        progress(f"parsec build: unpacking {source} into the image's {guest_root}")
        unpack_source(source, tree)
        for host_path, guest_path in uploads:
            target = rootfs / guest_path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(host_path, target)
        packages: dict[str, Any] = {}
        with _mounted(rootfs):
            _run(["chroot", str(rootfs), "/bin/sh", "-ec", setup_command], log, "set-up")
            for index, (name, command) in enumerate(package_commands, 1):
                progress(f"parsec build: [{index}/{len(package_commands)}] {name}")
                t0 = time.monotonic()
                subprocess.run(
                    ["chroot", str(rootfs), "/bin/sh", "-c", command],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
                         "LANG": "C.UTF-8"},
                )  # fmt: skip
                seconds = round(time.monotonic() - t0, 1)
                state = tree / ".damon-eval-build"
                ok = not (state / f"{name}.failed").exists()
                log_file = state / f"{name}.log"
                tail = log_file.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
                packages[name] = {"ok": ok, "seconds": seconds, "log_tail": [] if ok else tail}
                progress(f"parsec build:     {'ok' if ok else 'FAILED'} in {seconds} s")
        progress(f"parsec build: packing the built tree ({ARCHIVE_NAME})")
        _run(
            ["tar", "--zstd", "--owner=0", "--group=0", "--numeric-owner",
             "-cf", str(work / ARCHIVE_NAME), "-C", str(tree.parent), tree.name],
            log, "tar",
        )  # fmt: skip
    shutil.rmtree(rootfs, ignore_errors=True)
    summary = {
        "key": key,
        "identity": identity,
        "packages": packages,
        "built_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "build_seconds": round(time.monotonic() - started, 1),
        "archive_bytes": (work / ARCHIVE_NAME).stat().st_size,
        "source_digest": source_digest(source),
    }
    atomic_write_json(work / "build.json", summary)
    final.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(final, ignore_errors=True)
    work.rename(final)
    loaded = HostBuild.load(key)
    assert loaded is not None
    return loaded
