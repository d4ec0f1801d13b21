"""Guest kernels other than a Debian package: a .deb, a build tree, a source tree.

An image spec's ``kernel:`` is one of

* a Debian package name (``linux-image-amd64``): installed by mmdebstrap;
  ``{package: linux-image-amd64, suite: trixie-backports}`` takes it from
  another suite of the image's mirror (backports are NotAutomatic: apt
  installs them only when asked for by suite, ``<package>/<suite>``);
* a ``.deb`` file of a kernel image (``make bindeb-pkg``), modules inside;
* a build directory (``arch/x86/boot/bzImage`` and ``.config``), with
  ``modules:`` pointing at ``make modules_install INSTALL_MOD_PATH=...``
  output, or without it (the harness runs ``modules_install`` itself);
* a source tree or tarball (``{source: ..., config: fragment, patches: [...]}``),
  built here with the kernel's own ``make``: ``allnoconfig`` with the
  project's base config (``configs/kernels/damon-guest-minimal.config``) plus
  the fragment, then ``olddefconfig``.

This module decides a value's form (:func:`resolve_kernel`), its identity
(:meth:`KernelChoice.identity`, content hashes: goes into the image key) and
what a kernel config must have.  :mod:`damon_eval.guest.kernel_prepare`
prepares every non-package form into ``kernels/<key>/`` of the cache; its
``PreparedKernel.provenance`` goes into every result.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from damon_eval.errors import ConfigError, GuestError
from damon_eval.paths import configs_dir

KERNEL_FORMS = ("package", "deb", "build", "source")
BASE_CONFIG_NAME = "damon-guest-minimal.config"
TARBALL_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.bz2", ".tar.zst")
PACKAGE_NAME = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
SUITE_NAME = re.compile(r"^[a-z][a-z0-9.-]*$")
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
    suite: str | None = None  # form "package": another suite than the image's
    path: Path | None = None  # .deb, build dir or source tree/tarball
    modules: Path | None = None  # form "build": modules_install output
    config_fragment: Path | None = None  # form "source"
    patches: tuple[Path, ...] = ()

    def describe(self) -> str:
        if self.form == "package":
            return f"Debian package {self.name}" + (f" from {self.suite}" if self.suite else "")
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
            if self.suite:
                data["suite"] = self.suite
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
            return {"package": self.name, "suite": self.suite} if self.suite else self.name
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
            found = {"form": "package", "name": self.name}
            return {**found, "suite": self.suite} if self.suite else found
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
        "a source tree or tarball, {package: ..., suite: <another suite>} or "
        "{source: ..., config: ..., patches: [...]}"
    )
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"source", "build", "deb", "package", "modules",
                                       "config", "patches", "suite"})  # fmt: skip
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
        if form != "package" and "suite" in value:
            raise ConfigError(f"kernel {value!r}: suite applies to package only")
        if form == "package":
            choice = resolve_kernel(str(value["package"]), base)
            if choice.form != "package":
                raise ConfigError(
                    f"kernel package {value['package']!r} is not a package name "
                    f"(e.g. linux-image-amd64); {valid}"
                )
            suite = value.get("suite")
            if suite is None:
                return choice
            if not isinstance(suite, str) or not SUITE_NAME.match(suite):
                raise ConfigError(
                    f"kernel suite {suite!r} is not a Debian suite name "
                    "(e.g. trixie-backports, sid)"
                )
            return KernelChoice("package", name=choice.name, suite=suite)
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
    spec = resolve_kernel(value, base).as_spec_value()
    # A package name goes as itself: parse_kernel_option reads only mappings as JSON.
    return "--kernel " + shlex.quote(spec if isinstance(spec, str) else json.dumps(spec))


def parse_kernel_option(text: str) -> Any:
    """A ``--kernel`` argument: a JSON/YAML mapping, or a package name or path."""
    if not text.lstrip().startswith("{"):
        return text
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"--kernel {text!r} is not a valid mapping: {exc}") from None


def has_modules_tree(modules_root: Path) -> bool:
    return any((modules_root / sub).is_dir() for sub in ("lib/modules", "usr/lib/modules"))


def identity_key(identity: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


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
        # The code that builds: a change to it makes a new kernel.
        "builder": sha256_file(Path(__file__).with_name("kernel_prepare.py")),
    }
    return identity_key(parts)
