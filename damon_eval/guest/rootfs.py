"""The guest's root file system: mmdebstrap's command line and the tree's set-up.

:func:`mmdebstrap_argv` bootstraps Debian (with the spec's kernel package, or
none when the spec names a kernel of its own, which :func:`own_kernel_hooks`
put in); :func:`customize_rootfs` gives the tree a static network for QEMU
user networking, pinned SSH keys, masked units, journald in RAM and a fixed
machine-id.  The pipeline around them is :mod:`damon_eval.guest.build`.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from damon_eval.errors import GuestError
from damon_eval.guest import keys
from damon_eval.guest.spec import ImageSpec
from damon_eval.paths import cache_dir

GUEST_ADDRESS = "10.0.2.15/24"
GUEST_GATEWAY = "10.0.2.2"
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
# Tells the harness on the control port that sshd runs and eth0 has its
# address, so that it connects once instead of polling SSH through slirp
# (each early attempt costs a full banner timeout).
READY_LINE = "damon-eval-ready"
READY_UNIT = "damon-eval-ready.service"
READY_SCRIPT = "usr/local/lib/damon-eval/ready.sh"
READY_SCRIPT_TEXT = f"""#!/bin/sh
# Written by damon-eval: announce readiness on the control port (see rootfs.py).
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


def mmdebstrap_argv(
    spec: ImageSpec, target: Path, debs: Path | None = None, extra_hooks: Sequence[str] = ()
) -> list[str]:
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
    argv += extra_hooks
    argv += [spec.suite, str(target), spec.mirror]
    # A kernel from another suite (backports): its source next to the main one.
    argv += [
        f"deb {spec.mirror} {suite} {' '.join(spec.components)}" for suite in spec.kernel_suites
    ]
    return argv


def prune_debs(debs: Path, package_list: str, kept_lists: Sequence[str] = ()) -> int:
    """Delete cached .debs that are neither the installed versions nor in ``kept_lists``
    (the package lists of the other cached images, which share the suite's cache);
    returns how many."""
    wanted = set()
    for line in "\n".join([package_list, *kept_lists]).splitlines():
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


def package_list(root: Path, log_handle, log_path: Path) -> str:
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


def modules_dir(root: Path) -> Path:
    """Where the tree keeps kernel modules (``/usr/lib/modules`` unless ``/lib`` is
    a real directory, as on a tree without merged /usr)."""
    lib = root / "lib"
    if lib.is_dir() and not lib.is_symlink():
        return lib / "modules"
    return root / "usr" / "lib" / "modules"


def own_kernel_hooks(
    release: str, config: Path, module_dir: Path | None, initramfs: bool
) -> list[str]:
    """mmdebstrap customize hooks that put a kernel's config and modules
    (``module_dir`` = ``.../lib/modules/<release>``) into the tree, run depmod and,
    with ``initramfs``, mkinitramfs.

    The kernel itself stays outside: QEMU boots it with ``-kernel``.
    """
    q = shlex.quote
    # mkinitramfs reads /boot/config-<release> (compression, module support).
    hooks = ['mkdir -p "$1/boot"', f"upload {q(str(config))} {q(f'/boot/config-{release}')}"]
    if module_dir is not None:
        hooks += [
            'mkdir -p "$1/usr/lib/modules"',
            f"copy-in {q(str(module_dir))} /usr/lib/modules",
            f'chroot "$1" depmod {q(release)}',
        ]
    if initramfs:
        initrd = q(f"/boot/initrd.img-{release}")
        hooks.append(f'chroot "$1" mkinitramfs -o {initrd} {q(release)}')
    return [f"--customize-hook={hook}" for hook in hooks]


def builtin_modules(module_dir: Path | None) -> set[str]:
    """Names of the modules built into a kernel (from its ``modules.builtin``)."""
    if module_dir is None or not (module_dir / "modules.builtin").is_file():
        return set()
    return module_names((module_dir / "modules.builtin").read_text().splitlines())


def module_names(paths: list[str]) -> set[str]:
    """``kernel/fs/ext4/ext4.ko.xz`` -> ``ext4`` (dashes as underscores)."""
    return {Path(p).name.split(".ko")[0].replace("-", "_") for p in paths if ".ko" in p}
