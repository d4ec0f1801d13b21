"""Guest kernels other than a Debian package: a .deb, a build tree, a source tree.

An image spec's ``kernel:`` is one of

* a Debian package name (``linux-image-amd64``): installed by mmdebstrap;
* a ``.deb`` file of a kernel image (``make bindeb-pkg``), modules inside;
* a build directory (``arch/x86/boot/bzImage`` and ``.config``), with
  ``modules:`` pointing at ``make modules_install INSTALL_MOD_PATH=...``
  output, or without it (the harness runs ``modules_install`` itself);
* a source tree or tarball (``{source: ..., config: fragment, patches: [...]}``),
  built here with the kernel's own ``make``: ``allnoconfig`` with the
  project's base config (``configs/kernels/damon-guest-minimal.config``) plus
  the fragment, then ``olddefconfig``.

Every non-package form is *prepared* into ``kernels/<key>/`` of the cache
(``vmlinuz``, ``config``, ``modules/lib/modules/<release>``, ``kernel.json``),
keyed by a hash of its inputs; the image build copies it into the root file
system.  :func:`KernelChoice.identity` goes into the image key and
:func:`PreparedKernel.provenance` into every result.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import logging
import os
import re
import secrets
import shlex
import shutil
import subprocess
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from damon_eval.atomic import atomic_write_json
from damon_eval.errors import ConfigError, GuestError
from damon_eval.paths import cache_dir, configs_dir

log = logging.getLogger(__name__)

KERNEL_FORMS = ("package", "deb", "build", "source")
BASE_CONFIG_NAME = "damon-guest-minimal.config"
TARBALL_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.bz2", ".tar.zst")
PACKAGE_NAME = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
# What the evaluation needs from any guest kernel: DAMON with both monitoring
# primitives and the sysfs interface the harness drives.
REQUIRED_KERNEL_OPTIONS = (
    "CONFIG_DAMON",
    "CONFIG_DAMON_VADDR",
    "CONFIG_DAMON_PADDR",
    "CONFIG_DAMON_SYSFS",
)
# Config lines recorded with every result (the whole config goes in as a hash).
RECORDED_OPTION_PREFIXES = ("CONFIG_DAMON", "CONFIG_TRANSPARENT_HUGEPAGE")


def kernels_dir() -> Path:
    return cache_dir() / "kernels"


def base_config_path() -> Path:
    return configs_dir() / "kernels" / BASE_CONFIG_NAME


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_tree(root: Path, skip: tuple[str, ...] = (".git",)) -> str:
    """Content hash of every regular file (and symlink target) under ``root``."""
    digest = hashlib.sha256()
    for directory, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in skip)
        for name in sorted(files):
            path = Path(directory) / name
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                digest.update(f"L {rel} {os.readlink(path)}\n".encode())
            elif path.is_file():
                digest.update(f"F {rel} {sha256_file(path)}\n".encode())
    return digest.hexdigest()


def parse_kernel_config(text: str) -> dict[str, str]:
    """``CONFIG_X=y`` lines as a dict; ``# CONFIG_X is not set`` become ``"n"``."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        if match := re.fullmatch(r"(CONFIG_\w+)=(.*)", line.strip()):
            values[match.group(1)] = match.group(2)
        elif match := re.fullmatch(r"# (CONFIG_\w+) is not set", line.strip()):
            values[match.group(1)] = "n"
    return values


def missing_kernel_options(config: dict[str, str]) -> list[str]:
    return [name for name in REQUIRED_KERNEL_OPTIONS if config.get(name) != "y"]


def check_kernel_options(
    config: dict[str, str],
    what: str,
    hint: str = "build it with those options or pick another kernel",
) -> None:
    """A clear error naming what a kernel without DAMON or its sysfs interface lacks."""
    missing = missing_kernel_options(config)
    if missing:
        raise GuestError(
            f"kernel {what} lacks {', '.join(missing)} (needs "
            f"{'=y, '.join(REQUIRED_KERNEL_OPTIONS)}=y: DAMON with vaddr, paddr and the "
            f"sysfs interface); {hint}"
        )


def config_provenance(config_text: str) -> dict[str, Any]:
    """The DAMON and THP lines of a kernel config and a hash of the whole."""
    values = parse_kernel_config(config_text)
    return {
        "config_sha256": hashlib.sha256(config_text.encode()).hexdigest(),
        "config_lines": {
            name: value
            for name, value in sorted(values.items())
            if name.startswith(RECORDED_OPTION_PREFIXES)
        },
    }


# ------------------------------------------------------------------ choice


@dataclass(frozen=True, slots=True)
class KernelChoice:
    """A resolved ``kernel:`` value (paths absolute, form decided)."""

    form: str  # one of KERNEL_FORMS
    name: str = ""  # package name (form "package")
    path: Path | None = None  # .deb, build dir or source tree/tarball
    modules: Path | None = None  # form "build": modules_install output
    config_fragment: Path | None = None  # form "source"
    patches: tuple[Path, ...] = ()

    def describe(self) -> str:
        if self.form == "package":
            return f"Debian package {self.name}"
        extra = ""
        if self.config_fragment is not None:
            extra += f" + config {self.config_fragment.name}"
        if self.patches:
            extra += f" + {len(self.patches)} patch(es)"
        return f"{self.form} {self.path}{extra}"

    def as_dict(self) -> dict[str, Any]:
        """The choice as written in the spec (paths resolved), JSON-friendly."""
        data: dict[str, Any] = {"form": self.form}
        if self.form == "package":
            data["name"] = self.name
            return data
        data["path"] = str(self.path)
        if self.modules is not None:
            data["modules"] = str(self.modules)
        if self.config_fragment is not None:
            data["config"] = str(self.config_fragment)
        if self.patches:
            data["patches"] = [str(p) for p in self.patches]
        return data

    def as_spec_value(self) -> str | dict[str, Any]:
        """The choice as a ``kernel:`` value again (absolute paths): resolves to itself."""
        if self.form == "package":
            return self.name
        value: dict[str, Any] = {self.form: str(self.path)}
        if self.modules is not None:
            value["modules"] = str(self.modules)
        if self.config_fragment is not None:
            value["config"] = str(self.config_fragment)
        if self.patches:
            value["patches"] = [str(p) for p in self.patches]
        return value

    def identity(self) -> dict[str, Any]:
        """What decides the kernel's content: goes into the image cache key.

        Hashing a source tree takes seconds, so a process hashes it once per
        state of its top-level files (an edit deep inside a tree while the
        harness runs is seen by the next command).
        """
        return dict(_identity(self, self._stamp()))

    def _stamp(self) -> tuple[tuple[str, int, int], ...]:
        paths = [self.path, self.config_fragment, self.modules, *self.patches]
        if self.form == "build" and self.path is not None:
            paths += [self.path / "arch/x86/boot/bzImage", self.path / ".config"]
        if self.form == "source":
            paths.append(base_config_path())
        stamps = []
        for path in paths:
            if path is not None:
                info = path.stat()
                stamps.append((str(path), info.st_mtime_ns, info.st_size))
        return tuple(stamps)

    def _compute_identity(self) -> dict[str, Any]:
        if self.form == "package":
            return {"form": "package", "name": self.name}
        if self.form == "source":
            return {"form": "source", "build_key": source_build_key(self)}
        assert self.path is not None
        if self.form == "deb":
            return {"form": "deb", "sha256": sha256_file(self.path)}
        files = {
            "bzImage": sha256_file(self.path / "arch/x86/boot/bzImage"),
            "config": sha256_file(self.path / ".config"),
        }
        if self.modules is not None:
            files["modules"] = sha256_tree(self.modules)
        return {"form": "build", **files}


@functools.lru_cache(maxsize=16)
def _identity(choice: KernelChoice, stamp: tuple) -> dict[str, Any]:
    return choice._compute_identity()


def _resolve_path(value: str, base: Path, what: str) -> Path:
    path = Path(os.path.expanduser(value))
    if not path.is_absolute():
        path = base / path
    if not path.exists():
        raise ConfigError(f"{what} {value!r} does not exist (looked for {path})")
    return path.resolve()


def is_tarball(path: Path) -> bool:
    return path.is_file() and path.name.endswith(TARBALL_SUFFIXES)


def resolve_kernel(value: Any, base: Path | None = None) -> KernelChoice:
    """Decide the form of a ``kernel:`` value; relative paths are from ``base``."""
    base = base or Path.cwd()
    valid = (
        "valid: a Debian package name, a .deb file, a kernel build directory, "
        "a source tree or tarball, or {source: ..., config: ..., patches: [...]}"
    )
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"source", "build", "deb", "package", "modules",
                                       "config", "patches"})  # fmt: skip
        forms = [k for k in ("source", "build", "deb", "package") if k in value]
        if unknown or len(forms) != 1:
            raise ConfigError(
                f"kernel {value!r}: needs exactly one of source, build, deb, package"
                + (f"; unknown key(s) {', '.join(unknown)}" if unknown else "")
                + f"; {valid}"
            )
        form = forms[0]
        if form != "source" and ("config" in value or "patches" in value):
            raise ConfigError(f"kernel {value!r}: config and patches apply to source only")
        if form != "build" and "modules" in value:
            raise ConfigError(f"kernel {value!r}: modules applies to build only")
        if form == "package":
            return resolve_kernel(str(value["package"]), base)
        # The key names the form: its value is a path even without a slash.
        choice = _kernel_at(_resolve_path(str(value[form]), base, f"kernel {form}"), valid)
        if choice.form != form:
            raise ConfigError(
                f"kernel {form}: {value[form]!r} is a {choice.form}, not a {form}; {valid}"
            )
        if form == "build" and "modules" in value:
            modules = _resolve_path(str(value["modules"]), base, "kernel modules directory")
            if not has_modules_tree(modules):
                raise ConfigError(
                    f"kernel modules {value['modules']!r} has no lib/modules/ "
                    "(expected `make modules_install INSTALL_MOD_PATH=<it>` output)"
                )
            return KernelChoice("build", path=choice.path, modules=modules)
        if form == "source":
            fragment = None
            if value.get("config") is not None:
                fragment = _resolve_path(str(value["config"]), base, "kernel config fragment")
            patches = value.get("patches") or []
            if not isinstance(patches, list):
                raise ConfigError(f"kernel patches must be a list of files, not {patches!r}")
            return KernelChoice(
                "source",
                path=choice.path,
                config_fragment=fragment,
                patches=tuple(_resolve_path(str(p), base, "kernel patch") for p in patches),
            )
        return choice
    if not isinstance(value, str) or not value:
        raise ConfigError(f"kernel {value!r} is not a string or mapping; {valid}")
    looks_like_path = (
        "/" in value or value.startswith(("~", ".")) or value.endswith((".deb", *TARBALL_SUFFIXES))
    )
    if not looks_like_path:
        if not PACKAGE_NAME.match(value):
            raise ConfigError(f"kernel {value!r} is not a Debian package name; {valid}")
        return KernelChoice("package", name=value)
    return _kernel_at(_resolve_path(value, base, "kernel"), valid)


def _kernel_at(path: Path, valid: str) -> KernelChoice:
    """The form of the kernel at an existing path."""
    if path.is_file() and path.name.endswith(".deb"):
        return KernelChoice("deb", path=path)
    if is_tarball(path):
        return KernelChoice("source", path=path)
    if path.is_dir():
        if (path / "arch/x86/boot/bzImage").is_file() and (path / ".config").is_file():
            return KernelChoice("build", path=path)
        if (path / "Kconfig").is_file() and (path / "Makefile").is_file():
            return KernelChoice("source", path=path)
        raise ConfigError(
            f"kernel directory {path} is neither a build directory (no "
            "arch/x86/boot/bzImage and .config) nor a source tree (no Kconfig, Makefile)"
        )
    raise ConfigError(f"kernel {path} is not a .deb, tarball or directory; {valid}")


def kernel_option(value: Any, base: Path | None = None) -> str:
    """``--kernel '<json>'`` for ``damon-eval guest build`` (empty for no kernel):
    how the pipeline passes a campaign's kernel, its paths made absolute."""
    if value is None:
        return ""
    return "--kernel " + shlex.quote(json.dumps(resolve_kernel(value, base).as_spec_value()))


def parse_kernel_option(text: str) -> Any:
    """A ``--kernel`` argument: a JSON/YAML mapping, or a package name or path."""
    if not text.lstrip().startswith("{"):
        return text
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"--kernel {text!r} is not a valid mapping: {exc}") from None


# --------------------------------------------------------------- prepared


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


def _identity_key(identity: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


@contextlib.contextmanager
def _locked(lock_path: Path):
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def normalize_modules_root(modules_root: Path) -> None:
    """Move ``usr/lib/modules`` to ``lib/modules``: kbuild installs there when the
    host's kmod says its module directory is /usr/lib/modules (Debian trixie)."""
    usr = modules_root / "usr" / "lib" / "modules"
    if usr.is_dir() and not (modules_root / "lib" / "modules").exists():
        (modules_root / "lib").mkdir(parents=True, exist_ok=True)
        usr.rename(modules_root / "lib" / "modules")
        shutil.rmtree(modules_root / "usr")


def has_modules_tree(modules_root: Path) -> bool:
    return any((modules_root / sub).is_dir() for sub in ("lib/modules", "usr/lib/modules"))


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
    key = _identity_key(choice.identity())
    final = kernels_dir() / key
    if (final / "kernel.json").is_file():
        return PreparedKernel.load(final)
    if choice.form == "source" and not allow_build:
        raise GuestError(
            f"kernel {choice.describe()} is not built yet (cache key {key}) and building "
            "is not allowed here"
        )
    with _locked(kernels_dir() / f".{key}.lock"):
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
            f"{[k.name for k in kernels] or 'none'} (is it the linux-image .deb of bindeb-pkg?)"
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
    # modules_install links the build tree; the image needs no headers.
    for release_dir in (target / "lib" / "modules").glob("*"):
        for name in ("build", "source"):
            if (release_dir / name).is_symlink():
                (release_dir / name).unlink()


# ----------------------------------------------------------- source build


def source_hash(path: Path) -> str:
    return sha256_file(path) if path.is_file() else sha256_tree(path)


def source_build_key(choice: KernelChoice) -> str:
    """Hash of the source, base config, fragment and patches (the build cache key)."""
    assert choice.path is not None
    parts = {
        "source": source_hash(choice.path),
        "base_config": sha256_file(base_config_path()),
        "fragment": sha256_file(choice.config_fragment) if choice.config_fragment else None,
        "patches": [sha256_file(p) for p in choice.patches],
        "builder": sha256_file(Path(__file__)),
    }
    return _identity_key(parts)


def merged_config_text(choice: KernelChoice) -> str:
    text = base_config_path().read_text()
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


def _build_source(
    choice: KernelChoice, key: str, work: Path, final: Path, progress: bool
) -> PreparedKernel:
    assert choice.path is not None
    for tool, package in (("make", "make"), ("gcc", "gcc"), ("flex", "flex"),
                          ("bison", "bison"), ("bc", "bc")):  # fmt: skip
        if shutil.which(tool) is None:
            raise GuestError(
                f"building a kernel needs {tool}; install: apt-get install -y flex bison bc "
                f"libelf-dev libssl-dev ({package})"
            )
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
                with tarfile.open(choice.path) as archive:
                    top = archive.next()
                    archive.extractall(src, filter="fully_trusted")
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
            "base_config_sha256": sha256_file(base_config_path()),
            "build_key": key,
            "build_seconds": seconds,
        },
    )
