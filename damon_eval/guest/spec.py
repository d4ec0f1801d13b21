"""The declarative guest image spec (``configs/guest/*.yaml``) and its cache key.

A spec names a Debian suite, mirror, kernel (a Debian package, or one of the
forms of :mod:`damon_eval.guest.kernels`: a .deb, a build tree, a source tree),
extra packages, units to mask and a disk size.  It is validated against
``damon_eval/data/schemas/guest-image.schema.json``; every problem is reported
in one :class:`~damon_eval.errors.ConfigError` that names the file, the key and
what is valid.

The cache key of an image is a hash of the spec (defaults filled in, so an
explicit default and an omitted key give the same image) and of the source
files that build it (:data:`BUILD_CODE_FILES`), and for a kernel of its own
of the kernel's identity (content hashes, not paths): changing either makes a
new image; changing anything else (the QEMU code, say) does not.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from damon_eval.errors import ConfigError
from damon_eval.guest.kernels import KernelChoice, resolve_kernel
from damon_eval.paths import DATA_DIR, PACKAGE_DIR, configs_dir
from damon_eval.schema import validate

SCHEMA_NAME = "guest-image"
SCHEMA_PATH = DATA_DIR / "schemas" / f"{SCHEMA_NAME}.schema.json"

# Packages every guest needs to boot and be reached; always installed.
REQUIRED_PACKAGES = (
    "initramfs-tools",
    "systemd-sysv",
    "udev",
    "openssh-server",
    "ifupdown",
    "iproute2",
    "kmod",
    "util-linux",
    "coreutils",
)

# Source files whose content decides what an image contains.
BUILD_CODE_FILES = (
    PACKAGE_DIR / "guest" / "spec.py",
    PACKAGE_DIR / "guest" / "build.py",
    PACKAGE_DIR / "guest" / "rootfs.py",
    PACKAGE_DIR / "guest" / "keys.py",
    SCHEMA_PATH,
)


@dataclass(frozen=True, slots=True)
class ImageSpec:
    """A validated image spec with every default filled in."""

    suite: str
    mirror: str
    components: tuple[str, ...]
    kernel_package: str
    packages: tuple[str, ...]
    disable_units: tuple[str, ...]
    blacklist_modules: tuple[str, ...]
    initramfs_modules: tuple[str, ...]
    kernel_cmdline: tuple[str, ...]
    disk_size: str
    hostname: str
    source: str = "<dict>"
    # A kernel other than a Debian package (None: ``kernel_package`` is installed).
    kernel: KernelChoice | None = None
    # The suite ``kernel_package`` comes from when not ``suite`` (e.g. trixie-backports).
    kernel_suite: str | None = None

    @property
    def disk_size_mib(self) -> int:
        number, unit = int(self.disk_size[:-1]), self.disk_size[-1]
        return number * 1024 if unit == "G" else number

    def all_packages(self) -> tuple[str, ...]:
        """Kernel + required + extra packages, without duplicates, in a stable order.

        A spec with a kernel of its own installs no kernel package.
        """
        package = self.kernel_package
        if self.kernel_suite:
            package += f"/{self.kernel_suite}"  # NotAutomatic suites need asking by name
        kernel = [package] if self.kernel is None else []
        ordered = [*kernel, *REQUIRED_PACKAGES, *self.packages]
        return tuple(dict.fromkeys(ordered))

    def as_dict(self) -> dict[str, Any]:
        """The spec's content (without where it was read from), JSON-friendly."""
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data.pop("source")
        kernel = data.pop("kernel")
        if kernel is not None:
            data["kernel"] = kernel.as_dict()
        if data["kernel_suite"] is None:
            del data["kernel_suite"]  # the image key of a spec without one stays as it was
        return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}

    @property
    def kernel_suites(self) -> tuple[str, ...]:
        """Suites of the mirror apt needs besides ``suite``."""
        if self.kernel is None and self.kernel_suite and self.kernel_suite != self.suite:
            return (self.kernel_suite,)
        return ()

    def with_kernel(self, value: Any, base: Path | None = None) -> ImageSpec:
        """This spec with its kernel replaced by a ``kernel:`` value (a campaign's)."""
        choice = resolve_kernel(value, base)
        if choice.form == "package":
            return replace(self, kernel_package=choice.name, kernel=None, kernel_suite=choice.suite)
        return replace(self, kernel=choice, kernel_suite=None)


def parse_spec(data: Any, source: str = "<dict>") -> ImageSpec:
    """Validate ``data`` (a parsed YAML document) and fill in the defaults."""
    if data is None:
        data = {}
    values = validate(data, SCHEMA_NAME, f"invalid guest image spec {source}")
    if data.get("kernel") is not None and "kernel_package" in data:
        raise ConfigError(
            f"invalid guest image spec {source}: give kernel or kernel_package, not both "
            "(kernel_package is kernel: <package name>)"
        )
    kernel = None
    if data.get("kernel") is not None:
        base = Path(source).parent if source != "<dict>" else None
        try:
            choice = resolve_kernel(data["kernel"], base)
        except ConfigError as exc:
            raise ConfigError(f"invalid guest image spec {source}: {exc}") from None
        if choice.form == "package":
            values["kernel_package"] = choice.name
            if choice.suite is not None:
                if data.get("kernel_suite") is not None:
                    raise ConfigError(
                        f"invalid guest image spec {source}: give kernel's suite or "
                        "kernel_suite, not both"
                    )
                values["kernel_suite"] = choice.suite
        else:
            kernel = choice
    return ImageSpec(
        suite=values["suite"],
        mirror=values["mirror"].rstrip("/"),
        components=tuple(values["components"]),
        kernel_package=values["kernel_package"],
        packages=tuple(values["packages"]),
        disable_units=tuple(values["disable_units"]),
        blacklist_modules=tuple(values["blacklist_modules"]),
        initramfs_modules=tuple(values["initramfs_modules"]),
        kernel_cmdline=tuple(values["kernel_cmdline"]),
        disk_size=values["disk_size"],
        hostname=values["hostname"],
        source=source,
        kernel=kernel,
        kernel_suite=values["kernel_suite"] if kernel is None else None,
    )


def default_spec_path() -> Path:
    return configs_dir() / "guest" / "default.yaml"


def load_spec(path: Path | str | None = None) -> ImageSpec:
    """Read and validate a spec file (``configs/guest/default.yaml`` when ``path`` is None)."""
    spec_path = Path(path) if path is not None else default_spec_path()
    try:
        text = spec_path.read_text()
    except FileNotFoundError:
        available = sorted(p.name for p in (configs_dir() / "guest").glob("*.yaml"))
        raise ConfigError(
            f"guest image spec {spec_path} does not exist; "
            f"specs in {configs_dir() / 'guest'}: {', '.join(available) or 'none'}"
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"guest image spec {spec_path} is not valid YAML: {exc}") from exc
    if data is not None and not isinstance(data, dict):
        raise ConfigError(
            f"guest image spec {spec_path} must be a mapping of keys to values, "
            f"not {type(data).__name__}"
        )
    return parse_spec(data, source=str(spec_path))


def build_code_digest() -> str:
    """Hash of the files that build images (changing them invalidates cached images)."""
    digest = hashlib.sha256()
    for path in BUILD_CODE_FILES:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def image_key(spec: ImageSpec) -> str:
    """The image cache key: 16 hex digits of sha256(spec content, build code, kernel)."""
    data = spec.as_dict()
    data.pop("kernel", None)  # where the kernel lies is not part of the image: its content is
    content: dict[str, Any] = {"spec": data, "build_code": build_code_digest()}
    if spec.kernel is not None:
        content["kernel"] = spec.kernel.identity()
    payload = json.dumps(content, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]
