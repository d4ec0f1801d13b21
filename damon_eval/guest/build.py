"""Build a guest disk image from a spec (cached by the spec's key).

Pipeline (``build_image``):

1. prepare the spec's own kernel, if it names one (:mod:`damon_eval.guest.kernel_prepare`:
   a .deb, a build tree or a source tree built here), and refuse a kernel
   without DAMON or its sysfs interface before anything else runs;
2. ``mmdebstrap --variant=minbase`` into a directory (with the spec's kernel
   package, whose initramfs gets the spec's ``initramfs_modules``: Debian's
   virtio_blk and ext4 are modules), then :func:`rootfs.customize_rootfs`;
3. an own kernel's modules go into ``/usr/lib/modules/<release>`` (depmod),
   and an initramfs is made for it with ``mkinitramfs`` unless every
   ``initramfs_modules`` entry is built in (the project's minimal config):
   mmdebstrap customize hooks (:func:`rootfs.own_kernel_hooks`);
4. copy the kernel, initramfs and config out (QEMU boots them with
   ``-kernel``/``-initrd``), ``mkfs.ext4 -d`` (no loop mount) and
   ``qemu-img convert`` to qcow2.

Everything happens in ``images/.build-<key>-*``, renamed to ``images/<key>``
at the very end (:mod:`damon_eval.guest.cache`), so an interrupted or failed
build never leaves a usable-looking image.  A lock serialises builds of the
same key.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from damon_eval.atomic import atomic_write_json, atomic_write_text
from damon_eval.errors import GuestError
from damon_eval.guest import kernels, keys, rootfs
from damon_eval.guest.cache import MANIFEST_VERSION, Image, images_dir, locked, replace_dir
from damon_eval.guest.kernel_prepare import PreparedKernel, prepare_kernel
from damon_eval.guest.kernels import parse_kernel_config
from damon_eval.guest.spec import ImageSpec, build_code_digest, image_key

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
HOST_TOOLS = {
    "mmdebstrap": "mmdebstrap",
    "mkfs.ext4": "e2fsprogs",
    "qemu-img": "qemu-utils",
}
APT_INSTALL = "apt-get install -y --no-install-recommends"


def check_host_tools(tools: dict[str, str] = HOST_TOOLS) -> None:
    """Fail with the apt-get command that installs what is missing."""
    missing = {tool: pkg for tool, pkg in tools.items() if shutil.which(tool) is None}
    if missing:
        packages = " ".join(sorted(set(missing.values())))
        raise GuestError(
            f"missing host tool(s) {', '.join(missing)}; install them with: "
            f"sudo {APT_INSTALL} {packages}"
        )


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
    builtin = rootfs.builtin_modules(rootfs.modules_dir(root) / release)
    present = rootfs.module_names(proc.stdout.splitlines()) | builtin
    missing = [m for m in modules if m.replace("-", "_") not in present]
    if missing:
        raise GuestError(
            f"the initramfs {initrd.name} lacks module(s) {', '.join(missing)}, which are "
            f"not built into kernel {release} either; check initramfs_modules in the spec"
        )


def modules_needing_initramfs(
    modules: tuple[str, ...], config: dict[str, str], module_dir: Path | None
) -> list[str]:
    """The spec's ``initramfs_modules`` that an own kernel does not have built in.

    Empty: the kernel mounts its root disk by itself and boots without an initramfs.
    """
    if config.get("CONFIG_MODULES") != "y":
        return []  # a kernel without module support has all its drivers built in
    builtin = rootfs.builtin_modules(module_dir)
    return [m for m in modules if m.replace("-", "_") not in builtin]


# ------------------------------------------------------------------ kernels


def _package_kernel_files(root: Path, spec: ImageSpec) -> tuple[str, Path, Path, Path]:
    boot = root / "boot"
    found = sorted(boot.glob("vmlinuz-*"))
    if len(found) != 1:
        raise GuestError(
            f"expected exactly one kernel in the image's /boot, found "
            f"{[k.name for k in found] or 'none'}; check kernel_package in the spec"
        )
    release = found[0].name.removeprefix("vmlinuz-")
    initrd = boot / f"initrd.img-{release}"
    config = boot / f"config-{release}"
    for path in (initrd, config):
        if not path.is_file():
            raise GuestError(f"the image has no {path.name} for kernel {release}")
    kernels.check_kernel_options(
        parse_kernel_config(config.read_text()),
        f"{release} from {spec.kernel_package} ({spec.kernel_suite or spec.suite})",
        hint="use suite trixie or newer, or another kernel_package",
    )
    return release, found[0], initrd, config


def own_kernel_plan(spec: ImageSpec, prepared: PreparedKernel) -> tuple[list[str], bool]:
    """mmdebstrap's hooks that install a prepared kernel, and whether they make an initramfs.

    The hooks run in mmdebstrap's customize stage, where the tree has /proc,
    /sys and /dev (mkinitramfs needs them).
    """
    release = prepared.release
    module_dir = prepared.modules_root / "lib" / "modules" / release
    module_dir = module_dir if module_dir.is_dir() else None
    config = parse_kernel_config(prepared.config_path.read_text())
    needed = modules_needing_initramfs(spec.initramfs_modules, config, module_dir)
    if needed and module_dir is None:
        raise GuestError(
            f"kernel {release} has {', '.join(needed)} of initramfs_modules as modules, but "
            "came without modules (give the build's modules: or build them in)"
        )
    hooks = rootfs.own_kernel_hooks(release, prepared.config_path, module_dir, bool(needed))
    return hooks, bool(needed)


def _own_kernel_initrd(
    root: Path, spec: ImageSpec, release: str, initramfs: bool, log_handle
) -> Path | None:
    if not initramfs:
        log_handle.write(f"# {release}: {', '.join(spec.initramfs_modules)} built in\n")
        return None
    initrd = root / "boot" / f"initrd.img-{release}"
    if not initrd.is_file():
        raise GuestError(f"mkinitramfs made no {initrd.name} for kernel {release}")
    check_initramfs(root, release, initrd, spec.initramfs_modules, log_handle)
    return initrd


def kernel_provenance(
    spec: ImageSpec, release: str, config_text: str, prepared: PreparedKernel | None
) -> dict[str, Any]:
    """What the manifest and every result record about the image's kernel."""
    if prepared is not None:
        return prepared.provenance()
    return {
        "form": "package",
        "name": spec.kernel_package,
        "suite": spec.kernel_suite or spec.suite,
        "release": release,
        **kernels.config_provenance(config_text),
    }


# -------------------------------------------------------------------- build


def build_image(
    spec: ImageSpec, *, force: bool = False, progress: bool = True
) -> tuple[Image, bool]:
    """The image for ``spec``, built unless cached; returns (image, whether it was built)."""
    key = image_key(spec)
    final = images_dir() / key
    if not force and (final / "manifest.json").is_file():
        return Image.load(final), False
    if spec.kernel is not None and spec.kernel.form == "source":
        _check_can_build()  # before a kernel build of minutes, not after it
    # A kernel without DAMON fails here, by name, before anything boots or bootstraps.
    prepared = prepare_kernel(spec.kernel, progress=progress) if spec.kernel else None
    _check_can_build()
    with locked(images_dir() / f".{key}.lock", f"image {key}"):
        if not force and (final / "manifest.json").is_file():
            return Image.load(final), False
        for stale in images_dir().glob(f".build-{key}-*"):
            shutil.rmtree(stale, ignore_errors=True)
        return _build_locked(spec, key, final, progress, prepared), True


def _check_can_build() -> None:
    check_host_tools()
    if os.geteuid() != 0:
        raise GuestError(
            "building a guest image needs root (mmdebstrap --mode=root and mkfs.ext4 -d must "
            "keep file ownership); run `sudo damon-eval guest build`"
        )


def _build_locked(
    spec: ImageSpec, key: str, final: Path, progress: bool, prepared: PreparedKernel | None
) -> Image:
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
                _build_into(spec, key, work, log_handle, log_path, shown, started, prepared)
            except (GuestError, OSError) as exc:
                log_handle.write(f"# build failed: {exc}\n")
                if str(log_path) in str(exc):
                    raise
                raise GuestError(f"image build failed: {exc}; full build log: {log_path}") from exc
            shown.phase(f"done in {time.monotonic() - started:.0f} s: {final}")
        shutil.copyfile(log_path, work / "build.log")
        replace_dir(work, final)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return Image.load(final)


def _build_into(
    spec: ImageSpec,
    key: str,
    work: Path,
    log_handle,
    log_path: Path,
    shown: BuildProgress,
    started: float,
    prepared: PreparedKernel | None = None,
) -> None:
    root = work / "rootfs"
    kernel_hooks, initramfs = own_kernel_plan(spec, prepared) if prepared else ([], True)
    shown.phase(f"bootstrapping Debian {spec.suite} ({len(spec.all_packages())} packages + deps)")
    debs = rootfs.debs_cache_dir(spec)
    debs.mkdir(parents=True, exist_ok=True)
    _run_logged(
        rootfs.mmdebstrap_argv(spec, root, debs, kernel_hooks),
        log_handle,
        shown.line,
        what="mmdebstrap",
        log_path=log_path,
    )
    shown.phase("configuring the root file system")
    build_id = secrets.token_hex(8)
    host_key = keys.generate_ed25519(f"damon-eval-host-{key}")
    client_key = keys.generate_ed25519(f"damon-eval-client-{key}")
    rootfs.customize_rootfs(
        root,
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

    initrd: Path | None
    if prepared is None:
        release, kernel, initrd, config = _package_kernel_files(root, spec)
        check_initramfs(root, release, initrd, spec.initramfs_modules, log_handle)
    else:
        release, kernel, config = prepared.release, prepared.vmlinuz, prepared.config_path
        initrd = _own_kernel_initrd(root, spec, release, initramfs, log_handle)
    config_text = config.read_text()
    config_values = parse_kernel_config(config_text)
    shutil.copyfile(kernel, work / "vmlinuz")
    if initrd is not None:
        shutil.copyfile(initrd, work / "initrd.img")
    shutil.copyfile(config, work / "kernel.config")
    packages = rootfs.package_list(root, log_handle, log_path)
    (work / "packages.txt").write_text(packages)
    # Other specs' images (parsec, another kernel) share this cache: keep their .debs too.
    others = [p.read_text() for p in sorted(images_dir().glob("*/packages.txt"))]
    rootfs.prune_debs(debs, packages, others)

    shown.phase(f"making the ext4 file system ({spec.disk_size})")
    raw = work / "disk.raw"
    _run_logged(
        ["mkfs.ext4", "-q", "-F", "-d", str(root), "-L", "root", str(raw),
         f"{spec.disk_size_mib}M"],
        log_handle,
        shown.line,
        what="mkfs.ext4 -d",
        log_path=log_path,
    )  # fmt: skip
    shutil.rmtree(root)
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
        "kernel": kernel_provenance(spec, release, config_text, prepared),
        "initramfs": initrd is not None,
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
