"""Guests of an own kernel: a .deb and a build tree, booted for real.

Network-free: both come from the Debian kernel .deb that the default image's
build left in the package cache (``debs/<suite>/linux-image-*.deb``).  As a
user's ``.deb``, it takes the ``deb`` form; unpacked into ``bzImage``,
``.config``, ``kernel.release`` and a ``modules_install`` tree, the ``build``
form.  Debian builds virtio_blk and ext4 as modules, so both images get an
initramfs made by mkinitramfs for that kernel.  Slow: each builds an image and
cold-boots it (minutes under TCG).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from guest_helpers import ACCEL, require_image_build

pytestmark = pytest.mark.guest


@pytest.fixture(scope="module")
def debian_kernel_deb(tmp_path_factory) -> Path:
    require_image_build("building an image with an own kernel needs root")
    from damon_eval.guest import load_spec
    from damon_eval.guest.rootfs import debs_cache_dir

    # Only a .deb that holds its vmlinuz is a bindeb-pkg-like kernel: newer Debian
    # kernels (trixie-backports' 7.x, cached by configs/kernel-ab.yaml) split the
    # image into linux-binary-* and linux-modules-*, and their linux-image-* is a
    # meta package.
    debs = [
        deb
        for deb in sorted(debs_cache_dir(load_spec()).glob("linux-image-[0-9]*.deb"))
        if _holds_vmlinuz(deb)
    ]
    if not debs:
        pytest.skip(
            f"no linux-image-<release> .deb holding boot/vmlinuz-* in "
            f"{debs_cache_dir(load_spec())} "
            "(build the default image once: `damon-eval guest build`)"
        )
    # A copy, as a user's own .deb: an image without the kernel package prunes the
    # package cache's copy.
    own = tmp_path_factory.mktemp("deb") / debs[-1].name
    shutil.copyfile(debs[-1], own)
    return own


def _holds_vmlinuz(deb: Path) -> bool:
    listing = subprocess.run(
        ["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True
    ).stdout
    return "./boot/vmlinuz-" in listing


def _boot_and_check(kernel_value, form: str, tmp_path: Path) -> None:
    from damon_eval.guest import Guest, build_image, load_spec

    spec = load_spec().with_kernel(kernel_value)
    assert spec.kernel is not None and spec.kernel.form == form
    image, _ = build_image(spec, progress=False)
    manifest = image.manifest()
    assert manifest["kernel"]["form"] == form and manifest["initramfs"] is True
    packages = image.packages_path.read_text().splitlines()
    assert not [p for p in packages if p.startswith("linux-image")], "no kernel package"
    release = manifest["kernel_release"]
    with Guest.start(image, fast_start=False, accel=ACCEL, run_dir=tmp_path / "run") as guest:
        assert guest.run("uname -r", timeout_s=30).stdout.strip() == release
        assert guest.fs.exists("/sys/kernel/mm/damon/admin/kdamonds")
        # Modules load from the copied tree (depmod ran for this release).
        assert guest.run("modprobe -n -v zram", timeout_s=30).exit_status == 0
        facts = guest.facts()
        assert facts["kernel"]["release"] == release
        assert facts["kernel"]["config_lines"]["CONFIG_DAMON_SYSFS"] == "y"


def test_deb_kernel_boots(debian_kernel_deb, tmp_path):
    _boot_and_check(str(debian_kernel_deb), "deb", tmp_path)


def test_build_tree_kernel_boots(debian_kernel_deb, tmp_path):
    unpacked = tmp_path / "deb"
    subprocess.run(["dpkg-deb", "-x", str(debian_kernel_deb), str(unpacked)], check=True)
    vmlinuz = next((unpacked / "boot").glob("vmlinuz-*"))
    release = vmlinuz.name.removeprefix("vmlinuz-")
    build = tmp_path / "build"
    (build / "arch/x86/boot").mkdir(parents=True)
    shutil.copyfile(vmlinuz, build / "arch/x86/boot/bzImage")
    shutil.copyfile(unpacked / "boot" / f"config-{release}", build / ".config")
    (build / "include/config").mkdir(parents=True)
    (build / "include/config/kernel.release").write_text(release + "\n")
    modules = tmp_path / "modules"
    for sub in ("lib/modules", "usr/lib/modules"):
        if (unpacked / sub).is_dir():
            shutil.copytree(unpacked / sub, modules / sub, symlinks=True)
    _boot_and_check({"build": str(build), "modules": str(modules)}, "build", tmp_path)
