"""Image building pieces that need no mmdebstrap: rootfs set-up, argv, cache."""

from __future__ import annotations

import io
import json
import os
import shlex
import shutil
import stat
from pathlib import Path

import pytest
from fake_kernels import make_build_dir, make_modules_tree

from damon_eval.errors import GuestError
from damon_eval.guest import build as build_mod
from damon_eval.guest import keys
from damon_eval.guest import rootfs as rootfs_mod
from damon_eval.guest.build import build_image
from damon_eval.guest.cache import Image
from damon_eval.guest.kernels import check_kernel_options, parse_kernel_config
from damon_eval.guest.rootfs import customize_rootfs, mmdebstrap_argv, prune_debs
from damon_eval.guest.spec import image_key, parse_spec

SPEC = parse_spec(
    {
        "suite": "trixie",
        "packages": ["gcc", "redis-server"],
        "disable_units": ["redis-server.service", "apt-daily.timer"],
    }
)


@pytest.fixture
def rootfs(tmp_path) -> Path:
    root = tmp_path / "rootfs"
    for directory in ("etc/ssh", "etc/systemd/system/multi-user.target.wants", "usr", "var"):
        (root / directory).mkdir(parents=True)
    for name in ("ssh_host_rsa_key", "ssh_host_rsa_key.pub", "ssh_host_ecdsa_key"):
        (root / "etc/ssh" / name).write_text("old")
    # An enabled unit that the spec masks.
    (root / "etc/systemd/system/multi-user.target.wants/redis-server.service").symlink_to(
        "/usr/lib/systemd/system/redis-server.service"
    )
    return root


def test_customize_rootfs(rootfs):
    host = keys.generate_ed25519("host")
    client = keys.generate_ed25519("client")
    customize_rootfs(rootfs, SPEC, host, client.public_line, "0" * 32, "key=k build_id=b")
    etc = rootfs / "etc"
    interfaces = (etc / "network/interfaces.d/eth0").read_text()
    assert "iface eth0 inet static" in interfaces
    assert "address 10.0.2.15/24" in interfaces and "gateway 10.0.2.2" in interfaces
    assert "dhcp" not in interfaces
    # Only the generated ed25519 host key is left, private half owner-only.
    assert sorted(p.name for p in (etc / "ssh").glob("ssh_host_*")) == [
        "ssh_host_ed25519_key",
        "ssh_host_ed25519_key.pub",
    ]
    private = etc / "ssh/ssh_host_ed25519_key"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert private.read_text() == host.private_openssh
    sshd = (etc / "ssh/sshd_config.d/damon-eval.conf").read_text()
    assert "PasswordAuthentication no" in sshd and "prohibit-password" in sshd
    authorized = rootfs / "root/.ssh/authorized_keys"
    assert authorized.read_text().strip() == client.public_line
    assert stat.S_IMODE(authorized.stat().st_mode) == 0o600
    assert stat.S_IMODE((rootfs / "root/.ssh").stat().st_mode) == 0o700
    for unit in ("redis-server.service", "apt-daily.timer", "sshd-keygen.service"):
        assert os.readlink(etc / "systemd/system" / unit) == "/dev/null"
    assert (etc / "machine-id").read_text() == "0" * 32 + "\n"
    assert "Storage=volatile" in (etc / "systemd/journald.conf.d/damon-eval.conf").read_text()
    ready = etc / "systemd/system/multi-user.target.wants/damon-eval-ready.service"
    assert os.readlink(ready) == "/etc/systemd/system/damon-eval-ready.service"
    script = (rootfs / rootfs_mod.READY_SCRIPT).read_text()
    assert "/dev/virtio-ports/org.damon-eval.ctl" in script and rootfs_mod.READY_LINE in script
    # /etc and /var are marked up to date with /usr (no first-boot ldconfig).
    usr_mtime = (rootfs / "usr").stat().st_mtime_ns
    for directory in ("etc", "var"):
        flag = rootfs / directory / ".updated"
        assert flag.stat().st_mtime_ns == usr_mtime
        assert f"TIMESTAMP_NSEC={usr_mtime}" in flag.read_text()


def test_mmdebstrap_argv(tmp_path):
    argv = mmdebstrap_argv(SPEC, tmp_path / "rootfs", tmp_path / "debs dir")
    assert argv[:4] == ["mmdebstrap", "--variant=minbase", "--mode=root", "--format=directory"]
    assert argv[-3:] == ["trixie", str(tmp_path / "rootfs"), "http://deb.debian.org/debian"]
    include = next(a for a in argv if a.startswith("--include="))
    assert include.split("=", 1)[1].split(",")[0] == "linux-image-amd64"
    assert "openssh-server" in include and "redis-server" in include
    hook = next(a for a in argv if a.startswith("--essential-hook="))
    assert "MODULES=list" in hook and "virtio_blk" in hook
    assert f"--setup-hook=sync-in {shlex.quote(str(tmp_path / 'debs dir'))} " in " ".join(argv)
    assert not any("sync" in a for a in mmdebstrap_argv(SPEC, tmp_path / "r"))


def test_essential_hook_writes_the_module_list(tmp_path):
    import subprocess

    hook = rootfs_mod._essential_hook(("virtio_pci", "virtio_blk", "ext4"))
    subprocess.run(["sh", "-c", hook, "exec", str(tmp_path)], check=True)
    modules = (tmp_path / "etc/initramfs-tools/modules").read_text()
    assert modules.split() == ["virtio_pci", "virtio_blk", "ext4"]
    conf = tmp_path / "etc/initramfs-tools/conf.d/damon-eval.conf"
    assert conf.read_text() == "MODULES=list\n"


def test_prune_debs_keeps_installed_versions(tmp_path):
    for name in (
        "gcc_4%3a14.2.0-1_amd64.deb",
        "gcc_4%3a14.1.0-1_amd64.deb",
        "libc6_2.41-12_amd64.deb",
        "gone_1.0_all.deb",
    ):
        (tmp_path / name).write_text("")
    removed = prune_debs(tmp_path, "gcc\t4:14.2.0-1\nlibc6:amd64\t2.41-12\n")
    assert removed == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "gcc_4%3a14.2.0-1_amd64.deb",
        "libc6_2.41-12_amd64.deb",
    ]


def test_kernel_config_parsing_and_check():
    config = parse_kernel_config(
        "CONFIG_DAMON=y\nCONFIG_DAMON_VADDR=y\n# CONFIG_DAMON_PADDR is not set\nCONFIG_ZRAM=m\n"
    )
    assert config == {
        "CONFIG_DAMON": "y",
        "CONFIG_DAMON_VADDR": "y",
        "CONFIG_DAMON_PADDR": "n",
        "CONFIG_ZRAM": "m",
    }
    with pytest.raises(
        GuestError, match=r"kernel 6.1.0 lacks CONFIG_DAMON_PADDR, CONFIG_DAMON_SYSFS .*trixie"
    ):
        check_kernel_options(config, "6.1.0", hint="use suite trixie or newer")
    check_kernel_options(
        {**config, "CONFIG_DAMON_PADDR": "y", "CONFIG_DAMON_SYSFS": "y"}, "6.12", "unused"
    )


def test_missing_host_tools_name_the_apt_command(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None if name == "mmdebstrap" else "/x")
    with pytest.raises(GuestError, match=r"missing host tool\(s\) mmdebstrap.*apt-get install"):
        build_mod.check_host_tools()


def _fake_image(directory: Path, key: str = "k") -> None:
    directory.mkdir(parents=True)
    for name in ("base.qcow2", "vmlinuz", "initrd.img", "known_hosts"):
        (directory / name).write_text("x")
    (directory / "ssh").mkdir()
    (directory / "ssh/id_ed25519").write_text("x")
    (directory / "manifest.json").write_text(json.dumps({"key": key, "build_id": "b"}))


def test_cached_image_is_returned_without_building(tmp_path, monkeypatch):
    monkeypatch.setenv("DAMON_EVAL_CACHE", str(tmp_path))
    _fake_image(tmp_path / "images" / image_key(SPEC))

    def no_build(*args, **kwargs):
        raise AssertionError("a cached image must not be rebuilt")

    monkeypatch.setattr(build_mod, "_build_locked", no_build)
    monkeypatch.setattr(build_mod, "check_host_tools", no_build)
    image, built = build_image(SPEC)
    assert not built and image.path == tmp_path / "images" / image_key(SPEC)


def test_build_needs_root(tmp_path, monkeypatch):
    monkeypatch.setenv("DAMON_EVAL_CACHE", str(tmp_path))
    monkeypatch.setattr(build_mod, "check_host_tools", lambda: None)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(GuestError, match="needs root"):
        build_image(SPEC)


def test_failed_build_leaves_no_image_and_names_its_log(tmp_path, monkeypatch):
    monkeypatch.setenv("DAMON_EVAL_CACHE", str(tmp_path))
    monkeypatch.setattr(build_mod, "check_host_tools", lambda: None)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "mmdebstrap").write_text("#!/bin/sh\necho 'E: cannot reach the mirror' >&2\nexit 7\n")
    (fake / "mmdebstrap").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}:{os.environ['PATH']}")
    with pytest.raises(GuestError) as excinfo:
        build_image(SPEC, progress=False)
    message = str(excinfo.value)
    assert "mmdebstrap exited with status 7" in message
    assert "cannot reach the mirror" in message
    log_path = Path(message.rsplit("full build log: ", 1)[1])
    assert log_path.is_file() and "cannot reach the mirror" in log_path.read_text()
    images = tmp_path / "images"
    assert not (images / image_key(SPEC)).exists()
    assert not list(images.glob(".build-*")), "the temporary build directory must go"


def test_incomplete_image_is_refused(tmp_path):
    _fake_image(tmp_path / "img")
    (tmp_path / "img/vmlinuz").unlink()
    with pytest.raises(GuestError, match=r"incomplete \(missing vmlinuz\).*--force"):
        Image.load(tmp_path / "img")


def test_prune_keeps_the_specs_images_and_what_runs(tmp_path, monkeypatch):
    from damon_eval.guest import prune as prune_mod

    monkeypatch.setenv("DAMON_EVAL_CACHE", str(tmp_path))
    images = tmp_path / "images"
    kept_key = image_key(SPEC)
    _fake_image(images / kept_key)
    (images / kept_key / "manifest.json").write_text(json.dumps({"build_id": "kept"}))
    _fake_image(images / "0000000000000old")
    (images / "0000000000000old" / "manifest.json").write_text(json.dumps({"build_id": "old"}))
    _fake_image(images / "00000000000inuse")
    (images / "logs").mkdir()
    (images / f".build-{kept_key}-abcd").mkdir()
    states = tmp_path / "states"
    for name, build in (("s-kept", "kept"), ("s-old", "old")):
        (states / name).mkdir(parents=True)
        (states / name / "state.json").write_text(json.dumps({"inputs": {"image_build_id": build}}))
    running = f"qemu-system-x86_64 -kernel {images / '00000000000inuse'}/vmlinuz"
    monkeypatch.setattr(prune_mod, "_command_lines", lambda: [running])
    planned = {item.path.name: item.reason for item in prune_mod.plan([SPEC])}
    assert planned == {
        f".build-{kept_key}-abcd": "left over from an interrupted build",
        "0000000000000old": "image of no kept spec",
        "s-old": "saved state of a removed image",
    }
    removed = prune_mod.prune([SPEC], dry_run=True)
    assert len(removed) == 3 and (images / "0000000000000old").exists()
    prune_mod.prune([SPEC])
    assert not (images / "0000000000000old").exists() and not (states / "s-old").exists()
    assert (images / kept_key).exists() and (images / "00000000000inuse").exists()
    assert (states / "s-kept").exists() and (images / "logs").exists()


def test_initramfs_check_accepts_builtin_and_packed_modules(tmp_path, monkeypatch):
    import subprocess

    release = "6.12.117+deb13-amd64"
    modules_dir = tmp_path / "usr/lib/modules" / release
    modules_dir.mkdir(parents=True)
    (modules_dir / "modules.builtin").write_text("kernel/drivers/virtio/virtio_pci.ko\n")
    listing = (
        f"usr/lib/modules/{release}/kernel/drivers/block/virtio_blk.ko.xz\n"
        f"usr/lib/modules/{release}/kernel/fs/ext4/ext4.ko.xz\n"
    )

    def fake_run(argv, **kwargs):
        assert argv[:3] == ["chroot", str(tmp_path), "lsinitramfs"]
        return subprocess.CompletedProcess(argv, 0, listing, "")

    monkeypatch.setattr(build_mod.subprocess, "run", fake_run)
    log = io.StringIO()
    initrd = tmp_path / f"initrd.img-{release}"
    build_mod.check_initramfs(tmp_path, release, initrd, ("virtio_pci", "virtio_blk", "ext4"), log)
    with pytest.raises(GuestError, match=r"lacks module\(s\) virtio_net, which are not built"):
        build_mod.check_initramfs(tmp_path, release, initrd, ("virtio_net", "ext4"), log)


def test_force_rebuilds_a_cached_image(tmp_path, monkeypatch):
    monkeypatch.setenv("DAMON_EVAL_CACHE", str(tmp_path))
    _fake_image(tmp_path / "images" / image_key(SPEC))
    monkeypatch.setattr(build_mod, "check_host_tools", lambda: None)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    calls = []

    def fake_build(spec, key, final, progress, prepared):
        calls.append(key)
        return Image.load(final)

    monkeypatch.setattr(build_mod, "_build_locked", fake_build)
    assert build_image(SPEC)[1] is False and calls == []
    assert build_image(SPEC, force=True)[1] is True and calls == [image_key(SPEC)]


def test_errors_after_bootstrap_also_name_the_log(tmp_path, monkeypatch):
    monkeypatch.setenv("DAMON_EVAL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(build_mod, "check_host_tools", lambda: None)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    fake = tmp_path / "bin"
    fake.mkdir()
    # A "successful" bootstrap that installed no kernel.
    (fake / "mmdebstrap").write_text(
        "#!/usr/bin/env python3\nimport os, sys\n"
        "for d in ('usr', 'var', 'etc/ssh', 'boot'):\n"
        "    os.makedirs(os.path.join(sys.argv[-2], d))\n"
    )
    (fake / "mmdebstrap").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}:{os.environ['PATH']}")
    with pytest.raises(GuestError, match=r"expected exactly one kernel.*full build log: /"):
        build_image(SPEC, progress=False)
    assert not list((tmp_path / "cache/images").glob(".build-*"))


# ------------------------------------------------------------ own kernels

OWN_RELEASE = "6.12.9-own"
DAMON_LINES = (
    "CONFIG_MODULES=y\nCONFIG_DAMON=y\nCONFIG_DAMON_VADDR=y\nCONFIG_DAMON_PADDR=y\n"
    "CONFIG_DAMON_SYSFS=y\nCONFIG_TRANSPARENT_HUGEPAGE=y\n"
)


def _own_build(root: Path, config: str = DAMON_LINES, builtin: str = "") -> dict:
    build = make_build_dir(root, config, OWN_RELEASE)
    make_modules_tree(root / "mods", OWN_RELEASE, builtin)
    return {"build": str(build), "modules": str(root / "mods")}


def test_project_minimal_config_has_damon_and_boots_without_initramfs(repo_root):
    # The base config of source builds: DAMON with sysfs, and the root disk's
    # drivers built in, so its kernels need no initramfs.
    config = parse_kernel_config(
        (repo_root / "configs/kernels/damon-guest-minimal.config").read_text()
    )
    check_kernel_options(config, "damon-guest-minimal.config")
    for option in ("VIRTIO_PCI", "VIRTIO_BLK", "VIRTIO_NET", "VIRTIO_CONSOLE", "EXT4_FS"):
        assert config[f"CONFIG_{option}"] == "y", option


def test_modules_needing_initramfs(tmp_path):
    modules = tmp_path / OWN_RELEASE
    modules.mkdir()
    (modules / "modules.builtin").write_text(
        "kernel/drivers/virtio/virtio_pci.ko\nkernel/drivers/block/virtio_blk.ko\n"
        "kernel/fs/ext4/ext4.ko\n"
    )
    wanted = ("virtio_pci", "virtio_blk", "virtio_net", "ext4")
    on = {"CONFIG_MODULES": "y"}
    assert build_mod.modules_needing_initramfs(wanted, on, modules) == ["virtio_net"]
    assert build_mod.modules_needing_initramfs(wanted[:2], on, modules) == []
    assert build_mod.modules_needing_initramfs(wanted, on, None) == list(wanted)
    assert build_mod.modules_needing_initramfs(wanted, {"CONFIG_MODULES": "n"}, None) == []


def _prepared(tmp_path, monkeypatch, builtin: str):
    from damon_eval.guest.kernel_prepare import prepare_kernel
    from damon_eval.guest.kernels import resolve_kernel

    monkeypatch.setenv("DAMON_EVAL_CACHE", str(tmp_path / "cache"))
    return prepare_kernel(resolve_kernel(_own_build(tmp_path, builtin=builtin)))


def test_own_kernel_with_builtin_root_drivers_gets_no_initramfs(tmp_path, monkeypatch):
    prepared = _prepared(
        tmp_path, monkeypatch, "kernel/drivers/block/virtio_blk.ko\nkernel/fs/ext4/ext4.ko\n"
    )
    module_dir = prepared.modules_root / "lib/modules" / OWN_RELEASE
    assert not (module_dir / "build").is_symlink(), "no link into the host's build tree"
    spec = parse_spec({"suite": "trixie", "initramfs_modules": ["virtio_blk", "ext4"]})
    hooks, initramfs = build_mod.own_kernel_plan(spec, prepared)
    assert initramfs is False
    assert hooks == [
        '--customize-hook=mkdir -p "$1/boot"',
        f"--customize-hook=upload {prepared.config_path} /boot/config-{OWN_RELEASE}",
        '--customize-hook=mkdir -p "$1/usr/lib/modules"',
        f"--customize-hook=copy-in {module_dir} /usr/lib/modules",
        f'--customize-hook=chroot "$1" depmod {OWN_RELEASE}',
    ]
    log = io.StringIO()
    assert build_mod._own_kernel_initrd(tmp_path, spec, OWN_RELEASE, False, log) is None
    assert "virtio_blk, ext4 built in" in log.getvalue()
    # The hooks go in before mmdebstrap's positional arguments; no kernel package.
    own = parse_spec({"suite": "trixie", "kernel": _own_build(tmp_path / "again")})
    argv = rootfs_mod.mmdebstrap_argv(own, tmp_path / "root", None, hooks)
    assert argv[-3 - len(hooks) : -3] == hooks
    include = next(a for a in argv if a.startswith("--include="))
    assert "linux-image" not in include and "initramfs-tools" in include


def test_own_kernel_hooks_shell_parts_run(tmp_path):
    import subprocess

    hooks = rootfs_mod.own_kernel_hooks("6.1 x", Path("/c f"), Path("/m"), True)
    assert hooks[1] == "--customize-hook=upload '/c f' '/boot/config-6.1 x'"
    assert (
        hooks[-1]
        == "--customize-hook=chroot \"$1\" mkinitramfs -o '/boot/initrd.img-6.1 x' '6.1 x'"
    )
    for hook in hooks:
        command = hook.removeprefix("--customize-hook=")
        if command.startswith("mkdir"):
            subprocess.run(["sh", "-c", command, "exec", str(tmp_path)], check=True)
    assert (tmp_path / "boot").is_dir() and (tmp_path / "usr/lib/modules").is_dir()


def test_own_kernel_with_modular_root_drivers_gets_an_initramfs(tmp_path, monkeypatch):
    prepared = _prepared(tmp_path, monkeypatch, "kernel/fs/ext4/ext4.ko\n")
    spec = parse_spec({"suite": "trixie", "initramfs_modules": ["virtio_blk", "ext4"]})
    hooks, initramfs = build_mod.own_kernel_plan(spec, prepared)
    assert initramfs is True
    assert hooks[-1] == (
        f'--customize-hook=chroot "$1" mkinitramfs -o /boot/initrd.img-{OWN_RELEASE} {OWN_RELEASE}'
    )
    root = tmp_path / "rootfs"
    with pytest.raises(GuestError, match=r"mkinitramfs made no initrd.img-6.12.9-own"):
        build_mod._own_kernel_initrd(root, spec, OWN_RELEASE, True, io.StringIO())
    (root / "boot").mkdir(parents=True)
    (root / f"boot/initrd.img-{OWN_RELEASE}").write_bytes(b"cpio")
    checked = []
    monkeypatch.setattr(build_mod, "check_initramfs", lambda *a: checked.append(a[1:4]))
    initrd = build_mod._own_kernel_initrd(root, spec, OWN_RELEASE, True, io.StringIO())
    assert initrd == root / f"boot/initrd.img-{OWN_RELEASE}"
    assert checked == [(OWN_RELEASE, initrd, ("virtio_blk", "ext4"))]


def test_own_kernel_without_modules_but_modular_drivers_is_refused(tmp_path, monkeypatch):
    from damon_eval.guest.kernel_prepare import PreparedKernel

    prepared = _prepared(tmp_path, monkeypatch, "")
    shutil.rmtree(prepared.modules_root)
    spec = parse_spec({"suite": "trixie", "initramfs_modules": ["virtio_blk"]})
    with pytest.raises(GuestError, match=r"has virtio_blk of initramfs_modules as modules"):
        build_mod.own_kernel_plan(spec, PreparedKernel.load(prepared.path))


def test_kernel_without_damon_fails_before_any_build_step(tmp_path, monkeypatch):
    monkeypatch.setenv("DAMON_EVAL_CACHE", str(tmp_path / "cache"))
    value = _own_build(tmp_path, config="CONFIG_MODULES=y\nCONFIG_DAMON=y\n")
    spec = parse_spec({"suite": "trixie", "kernel": value})
    monkeypatch.setattr(
        build_mod, "check_host_tools", lambda: pytest.fail("the kernel is checked first")
    )
    with pytest.raises(
        GuestError,
        match=r"kernel 6.12.9-own .* lacks CONFIG_DAMON_VADDR, CONFIG_DAMON_PADDR, "
        r"CONFIG_DAMON_SYSFS \(needs",
    ):
        build_image(spec)
    assert not (tmp_path / "cache/images").exists()


def test_package_kernel_provenance_has_the_config_lines():
    text = DAMON_LINES + "CONFIG_ZRAM=y\n"
    info = build_mod.kernel_provenance(SPEC, "6.12.117+deb13-amd64", text, None)
    assert info["form"] == "package" and info["name"] == "linux-image-amd64"
    assert info["release"] == "6.12.117+deb13-amd64"
    assert "CONFIG_ZRAM" not in info["config_lines"]
    assert info["config_lines"]["CONFIG_DAMON_SYSFS"] == "y"


def test_image_without_initramfs_boots_without_initrd(tmp_path):
    from damon_eval.guest.qemu import MachineConfig, qemu_argv

    _fake_image(tmp_path / "img")
    (tmp_path / "img/initrd.img").unlink()
    with pytest.raises(GuestError, match=r"missing initrd.img"):
        Image.load(tmp_path / "img")
    manifest = tmp_path / "img/manifest.json"
    manifest.write_text(json.dumps({"key": "k", "build_id": "b", "initramfs": False}))
    image = Image.load(tmp_path / "img")
    assert image.initrd_path is None
    config = MachineConfig(
        accel="tcg", vcpus=1, memory_mib=512, kernel_path=image.kernel_path,
        initrd_path=image.initrd_path, disk_path=tmp_path / "d.qcow2", ssh_port=2222,
        qmp_socket=tmp_path / "q", control_socket=tmp_path / "c", console_log=tmp_path / "l",
    )  # fmt: skip
    argv = qemu_argv(config)
    assert "-initrd" not in argv and argv[argv.index("-kernel") + 1] == str(image.kernel_path)


def test_source_kernel_needs_root_before_it_is_built(tmp_path, monkeypatch):
    from damon_eval.guest import kernel_prepare

    monkeypatch.setenv("DAMON_EVAL_CACHE", str(tmp_path / "cache"))
    source = tmp_path / "linux"
    source.mkdir()
    (source / "Kconfig").write_text("")
    (source / "Makefile").write_text("")
    spec = parse_spec({"suite": "trixie", "kernel": {"source": str(source)}})
    monkeypatch.setattr(build_mod, "check_host_tools", lambda: None)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setattr(
        kernel_prepare, "_build_source", lambda *a: pytest.fail("no build without root")
    )
    with pytest.raises(GuestError, match="needs root"):
        build_image(spec)


def test_kernel_provenance_fits_the_result_schema(tmp_path, monkeypatch):
    import jsonschema

    from damon_eval.paths import DATA_DIR

    schema = json.loads((DATA_DIR / "schemas/result.schema.json").read_text())
    guest = schema["properties"]["provenance"]["properties"]["guest"]
    own = _prepared(tmp_path, monkeypatch, "").provenance()
    package = build_mod.kernel_provenance(SPEC, "6.12.117+deb13-amd64", DAMON_LINES, None)
    for kernel in (own, package, None):
        jsonschema.validate({"kernel": kernel}, guest)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"kernel": {**package, "form": "rpm"}}, guest)


def test_prune_debs_keeps_what_other_cached_images_install(tmp_path):
    # An image with an own kernel (no kernel package) must not take the default image's
    # kernel .deb from the shared cache: the .deb test of an own kernel needs it.
    for name in ("linux-image-6.12.1-amd64_6.12.1-1_amd64.deb", "gone_1.0_all.deb"):
        (tmp_path / name).write_text("")
    removed = prune_debs(
        tmp_path, "bash\t5.2\n", ["linux-image-6.12.1-amd64\t6.12.1-1\nbash\t5.2\n"]
    )
    assert removed == 1
    assert [p.name for p in tmp_path.iterdir()] == ["linux-image-6.12.1-amd64_6.12.1-1_amd64.deb"]
