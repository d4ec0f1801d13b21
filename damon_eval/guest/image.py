"""Build guest disk images from a spec, and find cached ones.

Pipeline (``build_image``):

1. ``mmdebstrap --variant=minbase`` into a directory (its kernel's initramfs
   gets the spec's ``initramfs_modules``: Debian's virtio_blk and ext4 are
   modules);
2. configure the tree: static network for QEMU user networking, host and
   client SSH keys, masked units, journald in RAM, fixed machine-id;
3. copy ``/boot/vmlinuz-*``, ``initrd.img-*`` and the kernel config out (QEMU
   boots them with ``-kernel``/``-initrd``) and check the kernel has DAMON;
4. ``mkfs.ext4 -d`` (no loop mount) and ``qemu-img convert`` to qcow2.

Everything happens in ``images/.build-<key>-*``, renamed to
``images/<key>`` at the very end, so an interrupted or failed build never
leaves a usable-looking image.  A lock serialises builds of the same key.

Cache layout (``damon_eval.paths.cache_dir()/images``)::

    <key>/base.qcow2  vmlinuz  initrd.img  kernel.config  packages.txt
          manifest.json  build.log  known_hosts  ssh/id_ed25519{,.pub}
    logs/<key>-<time>.log      every build's log (kept; named in errors)
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import re
import secrets
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from damon_eval.atomic import atomic_write_json, atomic_write_text
from damon_eval.errors import GuestError
from damon_eval.guest import keys
from damon_eval.guest.spec import ImageSpec, build_code_digest, image_key
from damon_eval.paths import cache_dir

log = logging.getLogger(__name__)

MANIFEST_VERSION = 1
GUEST_ADDRESS = "10.0.2.15/24"
GUEST_GATEWAY = "10.0.2.2"
# Kernel options the image's kernel must have for the evaluation.
REQUIRED_KERNEL_CONFIG = ("CONFIG_DAMON", "CONFIG_DAMON_VADDR", "CONFIG_DAMON_PADDR")
REPORTED_KERNEL_CONFIG = (
    "CONFIG_DAMON",
    "CONFIG_DAMON_VADDR",
    "CONFIG_DAMON_PADDR",
    "CONFIG_DAMON_SYSFS",
    "CONFIG_DAMON_DBGFS",
    "CONFIG_DAMON_DBGFS_DEPRECATED",
    "CONFIG_DAMON_RECLAIM",
    "CONFIG_DAMON_LRU_SORT",
    "CONFIG_TRANSPARENT_HUGEPAGE",
    "CONFIG_TRANSPARENT_HUGEPAGE_ALWAYS",
    "CONFIG_TRANSPARENT_HUGEPAGE_MADVISE",
    "CONFIG_ZRAM",
    "CONFIG_VIRTIO_CONSOLE",
)
# Units masked in every image, whatever the spec says: sshd-keygen would make
# host keys on "first boot" (we pin our own), and nothing else must start.
ALWAYS_MASKED_UNITS = ("sshd-keygen.service",)
# Documentation, manuals and translations are not needed in a test guest.
DPKG_PATH_EXCLUDES = (
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/locale/*",
    "path-include=/usr/share/locale/locale.alias",
)
APT_INSTALL = "apt-get install -y --no-install-recommends"
# Tells the harness on the control port that sshd runs and eth0 has its
# address, so that it connects once instead of polling SSH through slirp
# (each early attempt costs a full banner timeout).
READY_LINE = "damon-eval-ready"
READY_UNIT = "damon-eval-ready.service"
READY_SCRIPT = "usr/local/lib/damon-eval/ready.sh"
READY_SCRIPT_TEXT = f"""#!/bin/sh
# Written by damon-eval: announce readiness on the control port (see image.py).
port=/dev/virtio-ports/org.damon-eval.ctl
i=0
until [ -e "$port" ] && ip -4 -o addr show dev eth0 2>/dev/null | grep -q " inet "; do
    i=$((i + 1))
    [ "$i" -gt 3000 ] && exit 1
    sleep 0.1
done
echo {READY_LINE} > "$port"
"""
READY_UNIT_TEXT = f"""[Unit]
Description=Tell the damon-eval harness that the guest is ready
After=ssh.service

[Service]
Type=oneshot
ExecStart=/bin/sh /{READY_SCRIPT}

[Install]
WantedBy=multi-user.target
"""
HOST_TOOLS = {
    "mmdebstrap": "mmdebstrap",
    "mkfs.ext4": "e2fsprogs",
    "qemu-img": "qemu-utils",
}


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
    def initrd_path(self) -> Path:
        return self.path / "initrd.img"

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
        required = (
            image.disk_path,
            image.kernel_path,
            image.initrd_path,
            image.manifest_path,
            image.known_hosts_path,
            image.client_key_path,
        )
        missing = [p.name for p in required if not p.is_file()]
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


def check_host_tools(tools: dict[str, str] = HOST_TOOLS) -> None:
    """Fail with the apt-get command that installs what is missing."""
    missing = {tool: pkg for tool, pkg in tools.items() if shutil.which(tool) is None}
    if missing:
        packages = " ".join(sorted(set(missing.values())))
        raise GuestError(
            f"missing host tool(s) {', '.join(missing)}; install them with: "
            f"sudo {APT_INSTALL} {packages}"
        )


@contextlib.contextmanager
def _locked(lock_path: Path, what: str) -> Iterator[None]:
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


# ---------------------------------------------------------------- progress


class BuildProgress:
    """Shows the build's phase and the last output line; everything goes to the log too."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._status = None
        self._phase = ""
        self._packages_set_up = 0
        if enabled:
            from rich.console import Console

            self._console = Console(stderr=True)

    def __enter__(self) -> BuildProgress:
        if self.enabled and self._console.is_terminal:
            self._status = self._console.status("guest build: starting")
            self._status.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._status is not None:
            self._status.__exit__(*exc)

    def phase(self, text: str) -> None:
        self._phase = text
        if not self.enabled:
            return
        if self._status is not None:
            self._status.update(f"guest build: {text}")
        self._console.print(f"[bold]guest build[/bold]: {text}", highlight=False)

    def line(self, text: str) -> None:
        """One output line of a build tool."""
        if text.startswith("Setting up "):
            self._packages_set_up += 1
        if not self.enabled:
            return
        if text.startswith(("I: ", "W: ", "E: ")):
            self._console.print(f"  mmdebstrap {text}", highlight=False, markup=False)
        if self._status is not None:
            short = text if len(text) < 70 else text[:67] + "..."
            self._status.update(
                f"guest build: {self._phase} ({self._packages_set_up} packages set up) {short}"
            )


def _run_logged(
    argv: list[str],
    log_handle,
    on_line: Callable[[str], None] | None = None,
    what: str = "",
    log_path: Path | None = None,
) -> None:
    """Run ``argv``, streaming its output lines into the log (and ``on_line``)."""
    log_handle.write(f"$ {shlex.join(argv)}\n")
    log_handle.flush()
    try:
        proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            bufsize=1,
        )
    except OSError as exc:
        raise GuestError(f"cannot run {argv[0]}: {exc}; build log: {log_path}") from exc
    tail: list[str] = []
    with proc:  # closes the pipe and reaps the process, also on errors
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.rstrip("\n")
            log_handle.write(raw)
            tail = [*tail[-4:], line]
            if on_line is not None:
                on_line(line)
    log_handle.flush()
    status = proc.returncode
    if status != 0:
        last = " / ".join(t.strip() for t in tail if t.strip())[-300:]
        raise GuestError(
            f"image build failed: {what or argv[0]} exited with status {status} ({last}); "
            f"full build log: {log_path}"
        )


# ------------------------------------------------------------ rootfs set-up


def _essential_hook(modules: tuple[str, ...]) -> str:
    """Shell run by mmdebstrap before the kernel is installed: initramfs modules."""
    listing = shlex.quote("".join(f"{m}\n" for m in modules))
    return (
        'mkdir -p "$1/etc/initramfs-tools/conf.d" && '
        f'printf %s {listing} >> "$1/etc/initramfs-tools/modules" && '
        'echo MODULES=list > "$1/etc/initramfs-tools/conf.d/damon-eval.conf"'
    )


def debs_cache_dir(spec: ImageSpec) -> Path:
    """Downloaded .deb files kept between builds (apt re-checks their hashes)."""
    return cache_dir() / "debs" / spec.suite


def mmdebstrap_argv(spec: ImageSpec, target: Path, debs: Path | None = None) -> list[str]:
    argv = [
        "mmdebstrap",
        "--variant=minbase",
        "--mode=root",
        "--format=directory",
        "--verbose",
        f"--components={','.join(spec.components)}",
        f"--include={','.join(spec.all_packages())}",
        '--aptopt=Acquire::Retries "3"',
        f"--essential-hook={_essential_hook(spec.initramfs_modules)}",
    ]
    argv += [f"--dpkgopt={opt}" for opt in DPKG_PATH_EXCLUDES]
    if debs is not None:
        # mmdebstrap's documented package-cache recipe: a rebuild downloads
        # only what changed on the mirror.
        quoted = shlex.quote(str(debs))
        argv += [
            "--skip=essential/unlink",
            '--setup-hook=mkdir -p "$1"/var/cache/apt/archives/',
            f"--setup-hook=sync-in {quoted} /var/cache/apt/archives/",
            f"--customize-hook=sync-out /var/cache/apt/archives {quoted}",
        ]
    argv += [spec.suite, str(target), spec.mirror]
    return argv


def prune_debs(debs: Path, package_list: str) -> int:
    """Delete cached .debs that are not the installed versions; returns how many."""
    wanted = set()
    for line in package_list.splitlines():
        name, _, version = line.partition("\t")
        if version:
            wanted.add(f"{name.split(':')[0]}_{version.replace(':', '%3a')}_")
    removed = 0
    for deb in debs.glob("*.deb"):
        if not any(deb.name.startswith(prefix) for prefix in wanted):
            deb.unlink()
            removed += 1
    return removed


def _write(root: Path, relative: str, text: str, mode: int = 0o644) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink():
        path.unlink()
    path.write_text(text)
    os.chmod(path, mode)


def customize_rootfs(
    root: Path,
    spec: ImageSpec,
    host_key: keys.KeyPair,
    client_public_line: str,
    machine_id: str,
    image_label: str,
) -> None:
    """Configure the bootstrapped tree (static network, SSH, quiet system)."""
    _write(root, "etc/hostname", f"{spec.hostname}\n")
    _write(root, "etc/hosts", f"127.0.0.1 localhost\n127.0.1.1 {spec.hostname}\n")
    _write(root, "etc/fstab", "/dev/vda / ext4 defaults 0 0\n")
    # minbase has no DHCP client; QEMU user networking always uses these.
    # allow-hotplug, not auto: "auto" makes ifupdown-pre wait for `udevadm
    # settle`, 15 s of a TCG boot; udev brings eth0 up when it appears.
    _write(
        root,
        "etc/network/interfaces.d/eth0",
        "auto lo\niface lo inet loopback\n\n"
        f"allow-hotplug eth0\niface eth0 inet static\n  address {GUEST_ADDRESS}\n"
        f"  gateway {GUEST_GATEWAY}\n",
    )
    ssh_dir = root / "etc" / "ssh"
    for old in ssh_dir.glob("ssh_host_*"):
        old.unlink()
    keys.write_private_key(ssh_dir / "ssh_host_ed25519_key", host_key.private_openssh)
    _write(root, "etc/ssh/ssh_host_ed25519_key.pub", host_key.public_line + "\n")
    _write(
        root,
        "etc/ssh/sshd_config.d/damon-eval.conf",
        "# damon-eval: key-only root login with the image's pinned host key.\n"
        "HostKey /etc/ssh/ssh_host_ed25519_key\n"
        "PermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "UseDNS no\n"
        "MaxSessions 32\n"
        "MaxStartups 32:50:100\n",
    )
    root_ssh = root / "root" / ".ssh"
    root_ssh.mkdir(parents=True, exist_ok=True)
    os.chmod(root_ssh, 0o700)
    _write(root, "root/.ssh/authorized_keys", client_public_line + "\n", 0o600)
    # A fixed machine-id: no "first boot" work (ConditionFirstBoot) on every cold boot.
    _write(root, "etc/machine-id", machine_id + "\n", 0o444)
    _write(
        root,
        "etc/systemd/journald.conf.d/damon-eval.conf",
        "[Journal]\nStorage=volatile\nRuntimeMaxUse=16M\n",
    )
    unit_dir = root / "etc" / "systemd" / "system"
    unit_dir.mkdir(parents=True, exist_ok=True)
    for unit in (*ALWAYS_MASKED_UNITS, *spec.disable_units):
        target = unit_dir / unit
        if target.is_symlink() or target.exists():
            target.unlink()
        target.symlink_to("/dev/null")
    _write(root, "etc/damon-eval-image", image_label + "\n")
    if spec.blacklist_modules:
        _write(
            root,
            "etc/modprobe.d/damon-eval-blacklist.conf",
            "# damon-eval: devices the guest does not use (see the image spec).\n"
            + "".join(f"blacklist {module}\n" for module in spec.blacklist_modules),
        )
    _write(root, READY_SCRIPT, READY_SCRIPT_TEXT, 0o755)
    _write(root, f"etc/systemd/system/{READY_UNIT}", READY_UNIT_TEXT)
    wants = unit_dir / "multi-user.target.wants" / READY_UNIT
    wants.parent.mkdir(parents=True, exist_ok=True)
    wants.unlink(missing_ok=True)
    wants.symlink_to(f"/etc/systemd/system/{READY_UNIT}")
    # Mark /etc and /var as up to date with /usr, as systemd-update-done does
    # after a first boot; otherwise every cold boot of a fresh overlay runs
    # ldconfig and the journal catalog update (ConditionNeedsUpdate).
    usr_mtime_ns = (root / "usr").stat().st_mtime_ns
    for directory in ("etc", "var"):
        flag = root / directory / ".updated"
        flag.write_text(
            "# Written by damon-eval at image build time (see systemd-update-done(8)).\n"
            f"TIMESTAMP_NSEC={usr_mtime_ns}\n"
        )
        os.utime(flag, ns=(usr_mtime_ns, usr_mtime_ns))


def _kernel_files(root: Path) -> tuple[str, Path, Path, Path]:
    boot = root / "boot"
    kernels = sorted(boot.glob("vmlinuz-*"))
    if len(kernels) != 1:
        raise GuestError(
            f"expected exactly one kernel in the image's /boot, found "
            f"{[k.name for k in kernels] or 'none'}; check kernel_package in the spec"
        )
    release = kernels[0].name.removeprefix("vmlinuz-")
    initrd = boot / f"initrd.img-{release}"
    config = boot / f"config-{release}"
    for path in (initrd, config):
        if not path.is_file():
            raise GuestError(f"the image has no {path.name} for kernel {release}")
    return release, kernels[0], initrd, config


def parse_kernel_config(text: str) -> dict[str, str]:
    """``CONFIG_X=y`` lines as a dict; ``# CONFIG_X is not set`` become ``"n"``."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        if match := re.fullmatch(r"(CONFIG_\w+)=(.*)", line):
            values[match.group(1)] = match.group(2)
        elif match := re.fullmatch(r"# (CONFIG_\w+) is not set", line):
            values[match.group(1)] = "n"
    return values


def check_kernel_config(config: dict[str, str], release: str, spec: ImageSpec) -> None:
    missing = [name for name in REQUIRED_KERNEL_CONFIG if config.get(name) != "y"]
    if missing:
        raise GuestError(
            f"kernel {release} from {spec.kernel_package} ({spec.suite}) lacks "
            f"{', '.join(missing)}; use suite trixie or newer, or another kernel_package"
        )


def _module_names(paths: list[str]) -> set[str]:
    return {PurePosixPath(p).name.split(".ko")[0].replace("-", "_") for p in paths if ".ko" in p}


def check_initramfs(
    root: Path, release: str, initrd: Path, modules: tuple[str, ...], log_handle
) -> None:
    """The spec's modules must be in the initramfs or built into the kernel.

    Debian builds virtio_blk and ext4 as modules: without them in the
    initramfs the guest cannot mount its root disk.
    """
    proc = subprocess.run(
        ["chroot", str(root), "lsinitramfs", f"/boot/{initrd.name}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        log_handle.write(f"# lsinitramfs failed: {proc.stderr}\n")
        raise GuestError(f"cannot list the initramfs {initrd.name}: {proc.stderr.strip()}")
    builtin_list = root / "usr" / "lib" / "modules" / release / "modules.builtin"
    builtin = builtin_list.read_text().splitlines() if builtin_list.is_file() else []
    present = _module_names(proc.stdout.splitlines()) | _module_names(builtin)
    missing = [m for m in modules if m.replace("-", "_") not in present]
    if missing:
        raise GuestError(
            f"the initramfs {initrd.name} lacks module(s) {', '.join(missing)}, which are "
            f"not built into kernel {release} either; check initramfs_modules in the spec"
        )


def _package_list(root: Path, log_handle, log_path: Path) -> str:
    argv = ["dpkg-query", f"--admindir={root}/var/lib/dpkg", "-W"]
    if shutil.which("dpkg-query") is None:
        argv = ["chroot", str(root), "dpkg-query", "-W"]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        log_handle.write(proc.stderr)
        raise GuestError(
            f"cannot list the image's packages: {proc.stderr.strip()}; log: {log_path}"
        )
    return proc.stdout


# -------------------------------------------------------------------- build


def build_image(
    spec: ImageSpec, *, force: bool = False, progress: bool = True
) -> tuple[Image, bool]:
    """The image for ``spec``, built unless cached; returns (image, whether it was built)."""
    key = image_key(spec)
    final = images_dir() / key
    if not force and (final / "manifest.json").is_file():
        return Image.load(final), False
    check_host_tools()
    if os.geteuid() != 0:
        raise GuestError(
            "building a guest image needs root (mmdebstrap --mode=root and mkfs.ext4 -d must "
            "keep file ownership); run `sudo damon-eval guest build`"
        )
    with _locked(images_dir() / f".{key}.lock", f"image {key}"):
        if not force and (final / "manifest.json").is_file():
            return Image.load(final), False
        for stale in images_dir().glob(f".build-{key}-*"):
            shutil.rmtree(stale, ignore_errors=True)
        return _build_locked(spec, key, final, progress), True


def _build_locked(spec: ImageSpec, key: str, final: Path, progress: bool) -> Image:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    log_path = images_dir() / "logs" / f"{key}-{stamp}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    work = images_dir() / f".build-{key}-{secrets.token_hex(4)}"
    work.mkdir(parents=True)
    started = time.monotonic()
    try:
        with open(log_path, "w") as log_handle, BuildProgress(progress) as shown:
            log_handle.write(f"# damon-eval guest build {key} from {spec.source}\n")
            log_handle.write(json.dumps(spec.as_dict(), indent=2) + "\n")
            try:
                _build_into(spec, key, work, log_handle, log_path, shown, started)
            except (GuestError, OSError) as exc:
                log_handle.write(f"# build failed: {exc}\n")
                if str(log_path) in str(exc):
                    raise
                raise GuestError(f"image build failed: {exc}; full build log: {log_path}") from exc
            shown.phase(f"done in {time.monotonic() - started:.0f} s: {final}")
        shutil.copyfile(log_path, work / "build.log")
        _replace_dir(work, final)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return Image.load(final)


def _replace_dir(new: Path, final: Path) -> None:
    if final.exists():
        old = final.with_name(f".old-{final.name}-{secrets.token_hex(4)}")
        final.rename(old)
        new.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        new.rename(final)


def _build_into(
    spec: ImageSpec,
    key: str,
    work: Path,
    log_handle,
    log_path: Path,
    shown: BuildProgress,
    started: float,
) -> None:
    rootfs = work / "rootfs"
    shown.phase(f"bootstrapping Debian {spec.suite} ({len(spec.all_packages())} packages + deps)")
    debs = debs_cache_dir(spec)
    debs.mkdir(parents=True, exist_ok=True)
    _run_logged(
        mmdebstrap_argv(spec, rootfs, debs),
        log_handle,
        shown.line,
        what="mmdebstrap",
        log_path=log_path,
    )
    shown.phase("configuring the root file system")
    build_id = secrets.token_hex(8)
    host_key = keys.generate_ed25519(f"damon-eval-host-{key}")
    client_key = keys.generate_ed25519(f"damon-eval-client-{key}")
    customize_rootfs(
        rootfs,
        spec,
        host_key,
        client_key.public_line,
        machine_id=secrets.token_hex(16),
        image_label=f"key={key} build_id={build_id}",
    )
    keys.write_private_key(work / "ssh" / "id_ed25519", client_key.private_openssh)
    (work / "ssh" / "id_ed25519.pub").write_text(client_key.public_line + "\n")
    (work / "ssh" / "host_ed25519.pub").write_text(host_key.public_line + "\n")
    (work / "known_hosts").write_text(
        keys.known_hosts_line(keys.HOST_KEY_ALIAS, host_key.public_line)
    )

    release, kernel, initrd, config = _kernel_files(rootfs)
    config_values = parse_kernel_config(config.read_text())
    check_kernel_config(config_values, release, spec)
    check_initramfs(rootfs, release, initrd, spec.initramfs_modules, log_handle)
    shutil.copyfile(kernel, work / "vmlinuz")
    shutil.copyfile(initrd, work / "initrd.img")
    shutil.copyfile(config, work / "kernel.config")
    packages = _package_list(rootfs, log_handle, log_path)
    (work / "packages.txt").write_text(packages)
    prune_debs(debs, packages)

    shown.phase(f"making the ext4 file system ({spec.disk_size})")
    raw = work / "disk.raw"
    _run_logged(
        ["mkfs.ext4", "-q", "-F", "-d", str(rootfs), "-L", "root", str(raw),
         f"{spec.disk_size_mib}M"],
        log_handle,
        shown.line,
        what="mkfs.ext4 -d",
        log_path=log_path,
    )  # fmt: skip
    shutil.rmtree(rootfs)
    shown.phase("converting to qcow2")
    _run_logged(
        ["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(work / "base.qcow2")],
        log_handle,
        shown.line,
        what="qemu-img convert",
        log_path=log_path,
    )
    raw.unlink()
    os.chmod(work / "base.qcow2", 0o444)
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "key": key,
        "build_id": build_id,
        "spec": spec.as_dict(),
        "spec_source": spec.source,
        "build_code": build_code_digest(),
        "kernel_release": release,
        "kernel_config": {name: config_values.get(name, "n") for name in REPORTED_KERNEL_CONFIG},
        "package_list": "packages.txt",
        "nr_packages": len(packages.splitlines()),
        "host_key_fingerprint": keys.fingerprint_sha256(host_key.public_line),
        "built_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "build_seconds": round(time.monotonic() - started, 1),
        "mmdebstrap_version": _tool_version(["mmdebstrap", "--version"]),
        "build_log": str(log_path),
    }
    atomic_write_json(work / "manifest.json", manifest)
    atomic_write_text(work / "kernel_release", release + "\n")
    for name in ("manifest.json", "kernel_release"):
        os.chmod(work / name, 0o644)


def _tool_version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) else ""


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
