"""Preparing a guest kernel into the cache: unpack a .deb, take a build tree's
files, or build a source tree with the kernel's own ``make``.

``kernels/<key>/`` of the cache holds ``vmlinuz``, ``config``,
``modules/lib/modules/<release>`` and ``kernel.json`` (the provenance), keyed by
the kernel's identity (:meth:`damon_eval.guest.kernels.KernelChoice.identity`).
A kernel without DAMON or its sysfs interface is refused here, before any image
is built.  Source builds: ``allnoconfig`` with the project's base config and
the fragment, ``olddefconfig``, ``bzImage modules``, ``modules_install``;
progress as log lines, the full output in ``kernels/logs/``.
"""

from __future__ import annotations

import gzip
import json
import logging
import lzma
import os
import secrets
import shlex
import shutil
import subprocess
import tarfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from damon_eval.atomic import atomic_write_json
from damon_eval.errors import GuestError
from damon_eval.guest import kernels
from damon_eval.guest.cache import locked
from damon_eval.guest.kernels import (
    KernelChoice,
    check_kernel_options,
    config_provenance,
    parse_kernel_config,
    sha256_file,
    source_hash,
)
from damon_eval.paths import cache_dir

log = logging.getLogger(__name__)


def kernels_dir() -> Path:
    return cache_dir() / "kernels"


@dataclass(frozen=True, slots=True)
class PreparedKernel:
    """A kernel ready to go into an image: ``kernels/<key>/`` of the cache."""

    path: Path
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def vmlinuz(self) -> Path:
        return self.path / "vmlinuz"

    @property
    def config_path(self) -> Path:
        return self.path / "config"

    @property
    def modules_root(self) -> Path:
        """Holds ``lib/modules/<release>`` (may be absent for a kernel without modules)."""
        return self.path / "modules"

    @property
    def release(self) -> str:
        return self.info["release"]

    def provenance(self) -> dict[str, Any]:
        return dict(self.info)

    @classmethod
    def load(cls, path: Path) -> PreparedKernel:
        return cls(path, json.loads((path / "kernel.json").read_text()))


def normalize_modules_root(modules_root: Path) -> None:
    """Move ``usr/lib/modules`` to ``lib/modules``: kbuild installs there when the
    host's kmod says its module directory is /usr/lib/modules (Debian trixie)."""
    usr = modules_root / "usr" / "lib" / "modules"
    if usr.is_dir() and not (modules_root / "lib" / "modules").exists():
        (modules_root / "lib").mkdir(parents=True, exist_ok=True)
        usr.rename(modules_root / "lib" / "modules")
        shutil.rmtree(modules_root / "usr")


def _release_of_modules(modules_root: Path) -> str | None:
    found = sorted(p.name for p in (modules_root / "lib" / "modules").glob("*") if p.is_dir())
    return found[0] if len(found) == 1 else None


def _finish(
    choice: KernelChoice,
    work: Path,
    final: Path,
    release: str,
    extra: dict[str, Any],
) -> PreparedKernel:
    config_text = (work / "config").read_text()
    check_kernel_options(parse_kernel_config(config_text), f"{release} ({choice.describe()})")
    _drop_build_links(work / "modules")
    info = {
        "form": choice.form,
        "release": release,
        "spec": choice.as_dict(),
        **config_provenance(config_text),
        **extra,
    }
    atomic_write_json(work / "kernel.json", info)
    if final.exists():
        shutil.rmtree(final)
    work.rename(final)
    return PreparedKernel.load(final)


def prepare_kernel(
    choice: KernelChoice, *, allow_build: bool = True, progress: bool = True
) -> PreparedKernel | None:
    """The cached prepared kernel for ``choice`` (``None`` for a Debian package).

    Raises :class:`GuestError` when a source build is needed but not allowed.
    """
    if choice.form == "package":
        return None
    key = kernels.identity_key(choice.identity())
    final = kernels_dir() / key
    if (final / "kernel.json").is_file():
        return PreparedKernel.load(final)
    if choice.form == "source" and not allow_build:
        raise GuestError(
            f"kernel {choice.describe()} is not built yet (cache key {key}) and building "
            "is not allowed here"
        )
    with locked(kernels_dir() / f".{key}.lock", f"kernel {key}"):
        if (final / "kernel.json").is_file():
            return PreparedKernel.load(final)
        work = kernels_dir() / f".work-{key}-{secrets.token_hex(4)}"
        work.mkdir(parents=True)
        try:
            if choice.form == "deb":
                return _prepare_deb(choice, work, final)
            if choice.form == "build":
                return _prepare_build(choice, work, final)
            return _build_source(choice, key, work, final, progress)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise


def _prepare_deb(choice: KernelChoice, work: Path, final: Path) -> PreparedKernel:
    assert choice.path is not None
    tree = work / "deb"
    proc = subprocess.run(
        ["dpkg-deb", "-x", str(choice.path), str(tree)], capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise GuestError(f"cannot unpack kernel .deb {choice.path}: {proc.stderr.strip()}")
    kernels = sorted((tree / "boot").glob("vmlinuz-*"))
    if len(kernels) != 1:
        raise GuestError(
            f"kernel .deb {choice.path} must hold exactly one boot/vmlinuz-*, found "
            f"{[k.name for k in kernels] or 'none'} ({_deb_kernel_hint(choice.path)})"
        )
    release = kernels[0].name.removeprefix("vmlinuz-")
    config = tree / "boot" / f"config-{release}"
    if not config.is_file():
        raise GuestError(f"kernel .deb {choice.path} has no boot/config-{release}")
    shutil.copyfile(kernels[0], work / "vmlinuz")
    shutil.copyfile(config, work / "config")
    (work / "modules" / "lib").mkdir(parents=True)
    for candidate in (tree / "lib" / "modules", tree / "usr" / "lib" / "modules"):
        if candidate.is_dir():
            shutil.copytree(candidate, work / "modules" / "lib" / "modules", symlinks=True,
                            dirs_exist_ok=True)  # fmt: skip
    shutil.rmtree(tree)
    return _finish(choice, work, final, release, {"deb_sha256": sha256_file(choice.path)})


def _deb_kernel_hint(deb: Path) -> str:
    """Why a .deb holds no kernel: newer Debian kernels split it out of linux-image-*."""
    proc = subprocess.run(
        ["dpkg-deb", "-f", str(deb), "Package", "Depends"], capture_output=True, text=True
    )
    fields = dict(line.split(": ", 1) for line in proc.stdout.splitlines() if ": " in line)
    if "linux-binary-" in fields.get("Depends", ""):
        return (
            f"{fields.get('Package', deb.name)} is a Debian meta package whose kernel is in "
            f"linux-binary-*; name the Debian package instead, as "
            f"kernel: {fields.get('Package', '<package>')}"
        )
    return "is it the linux-image .deb of bindeb-pkg?"


def _prepare_build(choice: KernelChoice, work: Path, final: Path) -> PreparedKernel:
    assert choice.path is not None
    release_file = choice.path / "include" / "config" / "kernel.release"
    if not release_file.is_file():
        raise GuestError(f"kernel build directory {choice.path} has no {release_file.name}")
    release = release_file.read_text().strip()
    shutil.copyfile(choice.path / "arch/x86/boot/bzImage", work / "vmlinuz")
    shutil.copyfile(choice.path / ".config", work / "config")
    modules = work / "modules"
    if choice.modules is not None:
        for sub in ("lib/modules", "usr/lib/modules"):
            if (choice.modules / sub).is_dir():
                shutil.copytree(choice.modules / sub, modules / sub, symlinks=True)
        normalize_modules_root(modules)
    elif parse_kernel_config((work / "config").read_text()).get("CONFIG_MODULES") == "y":
        _modules_install(choice.path, modules, None)
    found = _release_of_modules(modules) if modules.is_dir() else None
    if modules.is_dir() and found != release:
        raise GuestError(
            f"kernel build {choice.path} is release {release} but its modules are for "
            f"{found or 'several or no releases'}"
        )
    return _finish(choice, work, final, release, choice.identity())


def _modules_install(build: Path, target: Path, log_handle) -> None:
    argv = ["make", "-C", str(build), f"INSTALL_MOD_PATH={target}", "modules_install"]
    proc = subprocess.run(argv, capture_output=True, text=True)
    if log_handle is not None:
        log_handle.write(f"$ {shlex.join(argv)}\n{proc.stdout}{proc.stderr}")
    if proc.returncode != 0:
        raise GuestError(f"`{shlex.join(argv)}` failed: {proc.stderr.strip()[-300:]}")
    normalize_modules_root(target)


def _drop_build_links(modules_root: Path) -> None:
    """modules_install links the build tree; the image needs no headers."""
    for release_dir in (modules_root / "lib" / "modules").glob("*"):
        for name in ("build", "source"):
            if (release_dir / name).is_symlink():
                (release_dir / name).unlink()


def merged_config_text(choice: KernelChoice) -> str:
    text = kernels.base_config_path().read_text()
    if choice.config_fragment is not None:
        text += f"\n# fragment {choice.config_fragment.name}\n"
        text += choice.config_fragment.read_text()
    return text


def unapplied_options(wanted_text: str, resolved: dict[str, str]) -> list[str]:
    """Options the base config or fragment sets that Kconfig did not keep."""
    wanted = parse_kernel_config(wanted_text)
    return [
        f"{name}={value} (got {resolved.get(name, 'n')})"
        for name, value in wanted.items()
        if resolved.get(name, "n") != value
    ]


class _BuildLog:
    """Build output into a log file; make's progress shown as one status line."""

    def __init__(self, path: Path, enabled: bool) -> None:
        self.path = path
        self.handle = open(path, "w")  # noqa: SIM115 - closed in close()
        self.enabled = enabled
        self.compiled = 0
        self.started = time.monotonic()
        self._last_shown = 0.0

    def phase(self, text: str) -> None:
        self.handle.write(f"# {text}\n")
        self.handle.flush()
        if self.enabled:
            log.warning("kernel build: %s", text)

    def run(self, argv: list[str], cwd: Path | None = None) -> None:
        self.handle.write(f"$ {shlex.join(argv)}\n")
        self.handle.flush()
        tail: list[str] = []
        with subprocess.Popen(
            argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, text=True, errors="replace", bufsize=1,
        ) as proc:  # fmt: skip
            assert proc.stdout is not None
            for line in proc.stdout:
                self.handle.write(line)
                tail = [*tail[-4:], line.strip()]
                if line.lstrip().startswith(("CC ", "AS ", "LD ", "AR ")):
                    self.compiled += 1
                now = time.monotonic()
                if self.enabled and now - self._last_shown > 30:
                    self._last_shown = now
                    log.warning(
                        "kernel build: %d objects in %.0f s (%s)",
                        self.compiled, now - self.started, line.strip()[:60],
                    )  # fmt: skip
        if proc.returncode != 0:
            raise GuestError(
                f"kernel build step `{shlex.join(argv[:4])}...` exited with "
                f"{proc.returncode} ({' / '.join(t for t in tail if t)[-300:]}); "
                f"full log: {self.path}"
            )

    def close(self) -> None:
        self.handle.close()


# Host programs a source build runs (program -> Debian package), checked before it
# starts so a missing one is one line instead of a FileNotFoundError or a make error.
BUILD_TOOLS = {"make": "make", "gcc": "gcc", "ld": "binutils", "flex": "flex",
               "bison": "bison", "bc": "bc"}  # fmt: skip
PATCH_TOOLS = {"patch": "patch"}
# Headers the build compiles against (objtool, certificates): packages only, no program.
BUILD_LIBRARY_PACKAGES = ("libelf-dev", "libssl-dev")


def check_build_tools(choice: KernelChoice) -> None:
    """A :class:`GuestError` naming every missing program the build of ``choice`` runs."""
    needed = {**BUILD_TOOLS, **(PATCH_TOOLS if choice.patches else {})}
    missing = {tool: package for tool, package in needed.items() if shutil.which(tool) is None}
    if missing:
        packages = " ".join(dict.fromkeys([*missing.values(), *BUILD_LIBRARY_PACKAGES]))
        raise GuestError(
            f"building kernel {choice.describe()} needs {', '.join(missing)} (not on PATH); "
            f"install: apt-get install -y --no-install-recommends {packages}"
        )


def _unpack_source(tarball: Path, dest: Path) -> tarfile.TarInfo | None:
    """Unpack a source tarball into ``dest``; its first member (None: empty)."""
    try:
        with tarfile.open(tarball) as archive:
            top = archive.next()
            archive.extractall(dest, filter="fully_trusted")
    except (tarfile.TarError, EOFError, lzma.LZMAError, zlib.error, gzip.BadGzipFile) as exc:
        why = " ".join(str(exc).split())[:300]  # tarfile's open error spans lines
        raise GuestError(
            f"kernel source tarball {tarball} cannot be unpacked ({why}); valid: a complete "
            "kernel source .tar, .tar.gz, .tar.xz or .tar.bz2"
        ) from None
    return top


def _build_source(
    choice: KernelChoice, key: str, work: Path, final: Path, progress: bool
) -> PreparedKernel:
    assert choice.path is not None
    check_build_tools(choice)
    logs = kernels_dir() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    build_log = _BuildLog(logs / f"{key}-{time.strftime('%Y%m%dT%H%M%S')}.log", progress)
    started = time.monotonic()
    try:
        if choice.path.is_file() or choice.patches:
            src = work / "src"
            if choice.path.is_file():
                build_log.phase(f"unpacking {choice.path.name}")
                src.mkdir()
                top = _unpack_source(choice.path, src)
                entries = list(src.iterdir())
                if len(entries) == 1 and entries[0].is_dir() and top is not None:
                    src = entries[0]
            else:
                build_log.phase(f"copying {choice.path} to patch it")
                shutil.copytree(choice.path, src, symlinks=True)
            for patch in choice.patches:
                build_log.phase(f"applying {patch.name}")
                build_log.run(["patch", "-p1", "--batch", "--forward", "-i", str(patch)], src)
        else:
            src = choice.path
        out = work / "build"
        out.mkdir()
        wanted = merged_config_text(choice)
        (work / "wanted.config").write_text(wanted)
        make = ["nice", "-n", "10", "make", "-C", str(src), f"O={out}"]
        build_log.phase("configuring: allnoconfig with the base config + fragment, olddefconfig")
        build_log.run([*make, "allnoconfig", f"KCONFIG_ALLCONFIG={work / 'wanted.config'}"])
        build_log.run([*make, "olddefconfig"])
        resolved = parse_kernel_config((out / ".config").read_text())
        dropped = unapplied_options(wanted, resolved)
        if dropped:
            raise GuestError(
                "kernel config options not applied (unmet dependencies?): "
                + ", ".join(dropped[:12])
            )
        check_kernel_options(resolved, f"from {choice.describe()}")
        jobs = str(os.cpu_count() or 1)
        build_log.phase(f"compiling bzImage and modules with -j{jobs}")
        build_log.run([*make, f"-j{jobs}", "bzImage", "modules"])
        release = (out / "include" / "config" / "kernel.release").read_text().strip()
        shutil.copyfile(out / "arch/x86/boot/bzImage", work / "vmlinuz")
        shutil.copyfile(out / ".config", work / "config")
        build_log.phase("modules_install")
        _modules_install(out, work / "modules", build_log.handle)
        seconds = round(time.monotonic() - started, 1)
        build_log.phase(f"built {release} in {seconds} s")
        source_digest = source_hash(choice.path)
    finally:
        build_log.close()
    shutil.copyfile(build_log.path, work / "build.log")
    for scratch in ("src", "build"):
        shutil.rmtree(work / scratch, ignore_errors=True)
    return _finish(
        choice,
        work,
        final,
        release,
        {
            "source_sha256": source_digest,
            "config_fragment": (
                {"name": choice.config_fragment.name, "sha256": sha256_file(choice.config_fragment)}
                if choice.config_fragment
                else None
            ),
            "patches": [{"name": p.name, "sha256": sha256_file(p)} for p in choice.patches],
            "base_config_sha256": sha256_file(kernels.base_config_path()),
            "build_key": key,
            "build_seconds": seconds,
        },
    )
