"""Own guest kernels: each form's resolution and preparation, the cache key, the
provenance and the missing-DAMON error (fake .debs, build and source trees; no
real kernel build)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from fake_kernels import DAMON_CONFIG, make_build_dir, make_modules_tree

from damon_eval.errors import ConfigError, GuestError
from damon_eval.guest import kernel_prepare, kernels
from damon_eval.guest.kernel_prepare import prepare_kernel
from damon_eval.guest.kernels import (
    KernelChoice,
    config_provenance,
    kernel_option,
    parse_kernel_option,
    resolve_kernel,
)

RELEASE = "6.12.9-test"
NO_SYSFS_CONFIG = DAMON_CONFIG.replace(
    "CONFIG_DAMON_SYSFS=y\n", "# CONFIG_DAMON_SYSFS is not set\n"
).replace("CONFIG_DAMON_PADDR=y\n", "")
needs_dpkg_deb = pytest.mark.skipif(
    shutil.which("dpkg-deb") is None, reason="dpkg-deb (package dpkg) makes the fake .deb"
)


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("DAMON_EVAL_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _modules_tree(root: Path, release: str = RELEASE) -> None:
    make_modules_tree(root, release)


def build_deb(tree: Path, deb: Path) -> None:
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(tree), str(deb)],
        check=True,
        capture_output=True,
    )


def make_deb(tmp_path: Path, config: str = DAMON_CONFIG, name: str = "image.deb") -> Path:
    tree = tmp_path / f"deb-tree-{name}"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN/control").write_text(
        f"Package: linux-image-{RELEASE}\nVersion: 1\nArchitecture: amd64\n"
        "Maintainer: test <t@example.org>\nDescription: fake kernel\n"
    )
    (tree / "boot").mkdir()
    (tree / f"boot/vmlinuz-{RELEASE}").write_bytes(b"fake bzImage")
    (tree / f"boot/config-{RELEASE}").write_text(config)
    _modules_tree(tree)
    deb = tmp_path / name
    build_deb(tree, deb)
    return deb


def make_source_tree(tmp_path: Path) -> Path:
    source = tmp_path / "linux-src"
    source.mkdir()
    (source / "Kconfig").write_text("mainmenu fake\n")
    (source / "Makefile").write_text("# fake\n")
    (source / "mm").mkdir()
    (source / "mm/damon.c").write_text("int damon_default = 5;\n")
    return source


# --------------------------------------------------------------- resolution


def test_package_names_resolve_to_the_package_form(tmp_path):
    choice = resolve_kernel("linux-image-amd64", tmp_path)
    assert choice == KernelChoice("package", name="linux-image-amd64")
    assert resolve_kernel({"package": "linux-image-rt-amd64"}).name == "linux-image-rt-amd64"
    assert prepare_kernel(choice) is None
    with pytest.raises(ConfigError, match=r"'Linux Image' is not a Debian package name; valid"):
        resolve_kernel("Linux Image")


@needs_dpkg_deb
def test_deb_resolves_relative_to_its_base(tmp_path):
    deb = make_deb(tmp_path)
    assert resolve_kernel("image.deb", tmp_path) == KernelChoice("deb", path=deb)
    assert resolve_kernel({"deb": str(deb)}).path == deb
    with pytest.raises(ConfigError, match=r"kernel 'gone.deb' does not exist"):
        resolve_kernel("gone.deb", tmp_path)


def test_build_directory_and_its_modules(tmp_path):
    build = make_build_dir(tmp_path)
    assert resolve_kernel(str(build)) == KernelChoice("build", path=build)
    modules = tmp_path / "mods"
    _modules_tree(modules)
    choice = resolve_kernel({"build": str(build), "modules": "mods"}, tmp_path)
    assert choice == KernelChoice("build", path=build, modules=modules)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"has no lib/modules/.*modules_install"):
        resolve_kernel({"build": str(build), "modules": "empty"}, tmp_path)


def test_source_tree_tarball_fragment_and_patches(tmp_path):
    source = make_source_tree(tmp_path)
    assert resolve_kernel(str(source)) == KernelChoice("source", path=source)
    tarball = tmp_path / "linux.tar.xz"
    with tarfile.open(tarball, "w:xz") as archive:
        archive.add(source, arcname="linux-6.12")
    assert resolve_kernel("linux.tar.xz", tmp_path) == KernelChoice("source", path=tarball)
    (tmp_path / "frag.config").write_text("CONFIG_DAMON_DBGFS=y\n")
    (tmp_path / "a.patch").write_text("")
    choice = resolve_kernel(
        {"source": "linux-src", "config": "frag.config", "patches": ["a.patch"]}, tmp_path
    )
    assert choice.config_fragment == tmp_path / "frag.config"
    assert choice.patches == (tmp_path / "a.patch",)
    assert resolve_kernel(choice.as_spec_value()) == choice


def test_bad_kernel_values_say_what_is_valid(tmp_path):
    build = make_build_dir(tmp_path)
    source = make_source_tree(tmp_path)
    (tmp_path / "neither").mkdir()
    cases = [
        ({"deb": "a.deb", "build": "b"}, r"needs exactly one of source, build, deb, package"),
        ({"source": str(source), "colour": "x"}, r"unknown key\(s\) colour"),
        ({"build": str(build), "patches": []}, r"config and patches apply to source only"),
        ({"source": str(source), "modules": "m"}, r"modules applies to build only"),
        ({"build": str(source)}, r"is a source, not a build"),
        (str(tmp_path / "neither"), r"neither a build directory .* nor a source tree"),
        (7, r"kernel 7 is not a string or mapping"),
    ]
    for value, message in cases:
        with pytest.raises(ConfigError, match=message):
            resolve_kernel(value, tmp_path)


def test_kernel_option_round_trips_with_absolute_paths(tmp_path):
    make_source_tree(tmp_path)
    (tmp_path / "frag.config").write_text("CONFIG_DAMON_DBGFS=y\n")
    option = kernel_option({"source": "linux-src", "config": "frag.config"}, tmp_path)
    assert option.startswith("--kernel '{")
    text = option.removeprefix("--kernel ").strip("'")
    assert parse_kernel_option(text) == {
        "source": str(tmp_path / "linux-src"),
        "config": str(tmp_path / "frag.config"),
    }
    assert kernel_option(None) == ""
    assert parse_kernel_option("linux-image-amd64") == "linux-image-amd64"
    with pytest.raises(ConfigError, match="not a valid mapping"):
        parse_kernel_option("{source: [")


# -------------------------------------------------------------- preparation


@needs_dpkg_deb
def test_deb_is_prepared_with_its_modules_and_provenance(tmp_path, cache, monkeypatch):
    deb = make_deb(tmp_path)
    prepared = prepare_kernel(resolve_kernel(str(deb)))
    assert prepared is not None and prepared.path.parent == cache / "kernels"
    assert prepared.release == RELEASE
    assert prepared.vmlinuz.read_bytes() == b"fake bzImage"
    assert (prepared.modules_root / "lib/modules" / RELEASE / "modules.builtin").is_file()
    info = prepared.provenance()
    assert info["form"] == "deb" and info["release"] == RELEASE
    assert info["deb_sha256"] == kernels.sha256_file(deb)
    assert info["config_sha256"] == hashlib.sha256(DAMON_CONFIG.encode()).hexdigest()
    assert info["config_lines"] == {
        "CONFIG_DAMON": "y",
        "CONFIG_DAMON_DBGFS": "n",
        "CONFIG_DAMON_PADDR": "y",
        "CONFIG_DAMON_SYSFS": "y",
        "CONFIG_DAMON_VADDR": "y",
        "CONFIG_TRANSPARENT_HUGEPAGE": "y",
        "CONFIG_TRANSPARENT_HUGEPAGE_MADVISE": "y",
    }

    # Cached: the second call unpacks nothing.
    def no_unpacking(*args, **kwargs):
        raise AssertionError("a prepared kernel must not be unpacked again")

    monkeypatch.setattr(kernel_prepare.subprocess, "run", no_unpacking)
    assert prepare_kernel(resolve_kernel(str(deb))) == prepared


def _fake_tools(tmp_path: Path, monkeypatch, make_script: str) -> Path:
    """A bin/ first on PATH with a fake make (and the other tools a build checks for)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "make").write_text("#!/bin/sh\n" + make_script)
    for tool in ("gcc", "flex", "bison", "bc"):
        (bin_dir / tool).write_text("#!/bin/sh\nexit 0\n")
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return bin_dir


# Fake `make ... INSTALL_MOD_PATH=x modules_install`: installs into usr/lib/modules as
# kbuild does with a kmod whose module directory is /usr/lib/modules.
FAKE_MODULES_INSTALL = """
for arg in "$@"; do case "$arg" in INSTALL_MOD_PATH=*) dest=${arg#INSTALL_MOD_PATH=};; esac; done
m="$dest/usr/lib/modules/6.12.9-test"
mkdir -p "$m/kernel" && echo kernel/fs/ext4/ext4.ko > "$m/modules.builtin"
ln -s /nonexistent/build "$m/build"
"""


def test_build_tree_without_modules_runs_modules_install(tmp_path, monkeypatch):
    _fake_tools(tmp_path, monkeypatch, FAKE_MODULES_INSTALL)
    build = make_build_dir(tmp_path)
    prepared = prepare_kernel(resolve_kernel(str(build)))
    modules = prepared.modules_root / "lib/modules" / RELEASE
    assert (modules / "modules.builtin").is_file(), "usr/lib/modules is moved to lib/modules"
    assert not (modules / "build").is_symlink(), "the link into the build tree is dropped"
    info = prepared.provenance()
    assert info["form"] == "build" and info["release"] == RELEASE
    assert info["bzImage"] == kernels.sha256_file(build / "arch/x86/boot/bzImage")


def test_build_tree_modules_of_another_release_are_refused(tmp_path):
    build = make_build_dir(tmp_path)
    modules = tmp_path / "mods"
    _modules_tree(modules, release="6.1.0-other")
    with pytest.raises(GuestError, match=r"is release 6.12.9-test but its modules are for 6.1.0"):
        prepare_kernel(resolve_kernel({"build": str(build), "modules": str(modules)}))
    assert not list((tmp_path / "cache/kernels").glob(".work-*")), "no half-prepared kernel"


# A fake kernel make: allnoconfig copies KCONFIG_ALLCONFIG to O/.config, the build
# writes a "bzImage" holding the (patched) source file, modules_install as above.
FAKE_KERNEL_MAKE = (
    """
for arg in "$@"; do
  case "$arg" in
    O=*) out=${arg#O=};; -C) ;; KCONFIG_ALLCONFIG=*) allconfig=${arg#KCONFIG_ALLCONFIG=};;
  esac
done
src=$2
case " $* " in
  *" allnoconfig "*) grep -v '^#' "$allconfig" > "$out/.config";;
  *" olddefconfig "*) ;;
  *" bzImage "*)
    mkdir -p "$out/arch/x86/boot" "$out/include/config"
    cp "$src/mm/damon.c" "$out/arch/x86/boot/bzImage"
    echo 6.12.9-test > "$out/include/config/kernel.release"
    echo "  CC      mm/damon.o";;
  *" modules_install "*) """
    + FAKE_MODULES_INSTALL
    + """;;
esac
"""
)

PATCH = """--- a/mm/damon.c
+++ b/mm/damon.c
@@ -1 +1 @@
-int damon_default = 5;
+int damon_default = 10;
"""


@pytest.fixture
def base_config(tmp_path, monkeypatch) -> Path:
    """A small base config in place of the project's (the fake make keeps every line)."""
    path = tmp_path / "base.config"
    path.write_text("\n".join(line for line in DAMON_CONFIG.splitlines() if "=" in line) + "\n")
    monkeypatch.setattr(kernels, "base_config_path", lambda: path)
    return path


def test_source_build_records_source_fragment_and_patches(tmp_path, monkeypatch, base_config):
    if shutil.which("patch") is None:
        pytest.skip("the patch program (package patch) applies the test's patch")
    _fake_tools(tmp_path, monkeypatch, FAKE_KERNEL_MAKE)
    source = make_source_tree(tmp_path)
    (tmp_path / "frag.config").write_text("CONFIG_ZRAM=y\n")
    (tmp_path / "default-10.patch").write_text(PATCH)
    choice = resolve_kernel(
        {"source": str(source), "config": "frag.config", "patches": ["default-10.patch"]},
        tmp_path,
    )
    prepared = prepare_kernel(choice, progress=False)
    assert prepared.vmlinuz.read_text() == "int damon_default = 10;\n", "built from the patch"
    assert (source / "mm/damon.c").read_text() == "int damon_default = 5;\n", "tree untouched"
    info = prepared.provenance()
    assert info["form"] == "source" and info["release"] == RELEASE
    assert info["source_sha256"] == kernels.sha256_tree(source)
    assert info["patches"] == [
        {"name": "default-10.patch", "sha256": kernels.sha256_file(tmp_path / "default-10.patch")}
    ]
    assert info["config_fragment"]["name"] == "frag.config"
    assert info["base_config_sha256"] == kernels.sha256_file(base_config)
    assert info["build_key"] == prepared.path.name
    assert info["config_lines"]["CONFIG_DAMON_SYSFS"] == "y"
    assert (prepared.path / "build.log").read_text().count("$ nice -n 10 make") == 3
    assert prepare_kernel(choice, allow_build=False) == prepared, "cached"


def test_unbuilt_source_is_refused_where_building_is_not_allowed(tmp_path, base_config):
    choice = resolve_kernel(str(make_source_tree(tmp_path)))
    with pytest.raises(GuestError, match=r"is not built yet .*building is not allowed"):
        prepare_kernel(choice, allow_build=False)


def test_fragment_options_that_kconfig_drops_are_an_error(tmp_path, monkeypatch, base_config):
    # This fake olddefconfig drops CONFIG_ZRAM, as Kconfig does with unmet dependencies.
    script = FAKE_KERNEL_MAKE.replace(
        '*" olddefconfig "*) ;;', '*" olddefconfig "*) sed -i /ZRAM/d "$out/.config";;'
    )
    _fake_tools(tmp_path, monkeypatch, script)
    (tmp_path / "frag.config").write_text("CONFIG_ZRAM=y\n")
    make_source_tree(tmp_path)
    choice = resolve_kernel({"source": "linux-src", "config": "frag.config"}, tmp_path)
    with pytest.raises(GuestError, match=r"not applied .*CONFIG_ZRAM=y \(got n\)"):
        prepare_kernel(choice, progress=False)


def test_a_package_key_holding_a_path_lists_the_valid_kernel_forms(tmp_path):
    (tmp_path / "k.deb").write_bytes(b"")
    with pytest.raises(ConfigError) as info:
        resolve_kernel({"package": "k.deb"}, tmp_path)
    message = str(info.value)
    assert (
        message.startswith("kernel package 'k.deb' is not a package name") and "\n" not in message
    )
    for form in ("a Debian package name", "a .deb file", "a kernel build directory",
                 "a source tree or tarball", "{package: ..., suite: <another suite>}",
                 "{source: ..., config: ..., patches: [...]}"):  # fmt: skip
        assert form in message


@pytest.mark.parametrize(
    "content",
    [b"not a tarball at all", b"\xfd7zXZ\x00\x00 truncated xz"],
    ids=["garbage", "truncated-xz"],
)
def test_a_corrupt_source_tarball_is_one_line_naming_the_file(tmp_path, monkeypatch,
                                                              base_config, content):  # fmt: skip
    _fake_tools(tmp_path, monkeypatch, FAKE_KERNEL_MAKE)
    tarball = tmp_path / "linux-6.12.tar.xz"
    tarball.write_bytes(content)
    with pytest.raises(GuestError) as info:
        prepare_kernel(resolve_kernel(str(tarball)), progress=False)
    message = str(info.value)
    assert message.startswith(f"kernel source tarball {tarball} cannot be unpacked (")
    assert "\n" not in message and "valid: a complete kernel source .tar" in message
    assert not list((tmp_path / "cache/kernels").glob(".work-*")), "no half-prepared kernel"


def test_a_truncated_source_tarball_is_a_guest_error_too(tmp_path, monkeypatch, base_config):
    # a real .tar.xz cut short: opens, then fails while extracting
    _fake_tools(tmp_path, monkeypatch, FAKE_KERNEL_MAKE)
    source = make_source_tree(tmp_path)
    (source / "big").write_bytes(os.urandom(200_000))
    tarball = tmp_path / "linux-6.12.tar.xz"
    with tarfile.open(tarball, "w:xz") as archive:
        archive.add(source, arcname="linux-6.12")
    tarball.write_bytes(tarball.read_bytes()[:100_000])
    with pytest.raises(GuestError, match=rf"^kernel source tarball {tarball} cannot be unpacked"):
        prepare_kernel(resolve_kernel(str(tarball)), progress=False)


def _without(monkeypatch, *tools: str) -> None:
    """shutil.which finds nothing for ``tools`` in the build's pre-check."""
    which = shutil.which
    monkeypatch.setattr(
        kernel_prepare.shutil,
        "which",
        lambda name, *a, **k: None if name in tools else which(name, *a, **k),
    )


def test_a_missing_patch_program_is_named_before_the_build(tmp_path, monkeypatch, base_config):
    _fake_tools(tmp_path, monkeypatch, FAKE_KERNEL_MAKE)
    source = make_source_tree(tmp_path)
    (tmp_path / "default-10.patch").write_text(PATCH)
    _without(monkeypatch, "patch")
    choice = resolve_kernel({"source": str(source), "patches": ["default-10.patch"]}, tmp_path)
    with pytest.raises(GuestError) as info:
        prepare_kernel(choice, progress=False)
    message = str(info.value)
    assert "needs patch (not on PATH); install: apt-get install -y" in message
    assert " patch libelf-dev" in message and "\n" not in message
    assert not list((tmp_path / "cache/kernels").glob("logs/*.log")), "checked before building"
    # without patches the build does not need the program
    assert prepare_kernel(resolve_kernel(str(source)), progress=False).release == RELEASE


def test_every_missing_build_program_is_named_with_its_package(tmp_path, monkeypatch,
                                                               base_config):  # fmt: skip
    _fake_tools(tmp_path, monkeypatch, FAKE_KERNEL_MAKE)
    _without(monkeypatch, "flex", "bc", "ld")
    wanted = r"needs ld, flex, bc \(not on PATH\); install: apt-get install -y "
    wanted += r"--no-install-recommends binutils flex bc libelf-dev libssl-dev$"
    with pytest.raises(GuestError, match=wanted):
        prepare_kernel(resolve_kernel(str(make_source_tree(tmp_path))), progress=False)


# ---------------------------------------------------------------- cache key


def test_source_key_changes_with_source_config_patches_and_base(tmp_path, base_config):
    source = make_source_tree(tmp_path)
    fragment = tmp_path / "frag.config"
    fragment.write_text("CONFIG_ZRAM=y\n")
    patch = tmp_path / "a.patch"
    patch.write_text(PATCH)
    plain = resolve_kernel(str(source))
    full = resolve_kernel({"source": str(source), "config": str(fragment), "patches": [str(patch)]})
    with_fragment = resolve_kernel({"source": str(source), "config": str(fragment)})
    keys = {plain.identity()["build_key"], full.identity()["build_key"]}
    keys.add(with_fragment.identity()["build_key"])
    assert len(keys) == 3
    before = full.identity()
    assert full.identity() == before, "stable"
    fragment.write_text("CONFIG_ZRAM=y\nCONFIG_DAMON_DBGFS=y\n")
    after_fragment = full.identity()
    assert after_fragment != before
    patch.write_text(PATCH.replace("10", "20"))
    after_patch = full.identity()
    assert after_patch != after_fragment
    (source / "Makefile").write_text("# fake, edited\n")
    assert full.identity() == after_patch, "a process hashes a tree once (top level unchanged)"
    kernels._identity.cache_clear()  # as the next command would
    after_source = full.identity()
    assert after_source != after_patch
    base_config.write_text(base_config.read_text() + "CONFIG_SWAP=y\n")
    assert full.identity() != after_source


@needs_dpkg_deb
def test_deb_and_build_keys_follow_content_not_path(tmp_path):
    deb = make_deb(tmp_path)
    first = resolve_kernel(str(deb)).identity()
    copy = tmp_path / "copy.deb"
    shutil.copyfile(deb, copy)
    assert resolve_kernel(str(copy)).identity() == first
    other = make_deb(tmp_path, DAMON_CONFIG + "CONFIG_ZRAM=y\n", name="other.deb")
    assert resolve_kernel(str(other)).identity() != first
    build = make_build_dir(tmp_path)
    before = resolve_kernel(str(build)).identity()
    (build / ".config").write_text(DAMON_CONFIG + "CONFIG_ZRAM=m\n")
    assert resolve_kernel(str(build)).identity() != before


# ---------------------------------------------------------- missing options


@needs_dpkg_deb
def test_kernel_without_damon_sysfs_is_refused_naming_the_options(tmp_path, cache):
    deb = make_deb(tmp_path, NO_SYSFS_CONFIG)
    with pytest.raises(GuestError) as excinfo:
        prepare_kernel(resolve_kernel(str(deb)))
    message = str(excinfo.value)
    assert f"kernel {RELEASE}" in message
    assert "lacks CONFIG_DAMON_PADDR, CONFIG_DAMON_SYSFS (needs" in message
    assert "CONFIG_DAMON_VADDR" not in message.split("(needs")[0]
    assert not [p for p in (cache / "kernels").iterdir() if not p.name.startswith(".")]
    assert not list((cache / "kernels").glob(".work-*"))


def test_build_tree_without_damon_is_refused(tmp_path):
    build = make_build_dir(tmp_path, "CONFIG_MODULES=n\n# CONFIG_DAMON is not set\n")
    with pytest.raises(GuestError, match=r"lacks CONFIG_DAMON, CONFIG_DAMON_VADDR"):
        prepare_kernel(resolve_kernel(str(build)))


def test_config_provenance_keeps_damon_and_thp_lines_only():
    info = config_provenance("CONFIG_ZRAM=y\nCONFIG_DAMON=y\nCONFIG_TRANSPARENT_HUGEPAGE=y\n")
    assert info["config_lines"] == {"CONFIG_DAMON": "y", "CONFIG_TRANSPARENT_HUGEPAGE": "y"}
    assert len(info["config_sha256"]) == 64
    assert json.dumps(info)  # JSON-friendly: goes into manifests and results


def test_campaign_guest_kernel_reaches_the_image_from_the_campaigns_directory(
    tmp_path, monkeypatch
):
    import damon_eval.guest
    from damon_eval.config.campaign import campaign_from_dict
    from damon_eval.guest import machine
    from damon_eval.measure.plan import campaign_guest

    make_build_dir(tmp_path)
    data = {
        "campaign": "own-kernel",
        "workloads": ["synthetic/zigzag"],
        "configs": ["orig"],
        "guest": {"kernel": {"build": "linux-build"}},
    }
    campaign = campaign_from_dict(data, tmp_path / "campaign.yaml")
    assert "kernel" not in campaign_from_dict({**data, "guest": {}}, "<t>").settings["guest"]
    seen = {}

    def fake_ensure_image(spec_path, *, progress, kernel, kernel_base):
        spec = damon_eval.guest.load_spec(spec_path).with_kernel(kernel, kernel_base)
        seen["kernel"] = spec.kernel
        raise RuntimeError("stop before booting")

    monkeypatch.setattr(damon_eval.guest, "ensure_image", fake_ensure_image)
    monkeypatch.setattr(machine.Guest, "start", lambda *a, **k: pytest.fail("no boot"))
    from damon_eval.machine_select import open_machine
    from damon_eval.machines.preparation import Preparation

    selector = campaign_guest(campaign).with_work_dir(tmp_path / "work")
    with (
        pytest.raises(RuntimeError, match="stop before booting"),
        open_machine(selector, Preparation()),
    ):
        pass
    assert seen["kernel"] == KernelChoice("build", path=tmp_path / "linux-build")
    with pytest.raises(ConfigError, match=r"guest"):
        campaign_from_dict({**data, "guest": {"kernel": 3}}, "<t>")


@needs_dpkg_deb
def test_a_debian_meta_package_deb_names_the_package_form_instead(tmp_path):
    # The layout of trixie-backports' 7.x linux-image-*: no boot/, only Depends.
    tree = tmp_path / "meta"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN/control").write_text(
        "Package: linux-image-7.3.4+deb13-amd64\nVersion: 7.3.4-1~bpo13+1\n"
        "Architecture: amd64\nMaintainer: test <t@example.org>\n"
        "Depends: linux-binary-7.3.4+deb13-amd64 (= 7.3.4-1~bpo13+1), "
        "linux-modules-7.3.4+deb13-amd64 (= 7.3.4-1~bpo13+1)\nDescription: meta\n"
    )
    deb = tmp_path / "linux-image-7.3.4+deb13-amd64_7.3.4-1~bpo13+1_amd64.deb"
    build_deb(tree, deb)
    with pytest.raises(GuestError) as raised:
        prepare_kernel(resolve_kernel(str(deb)))
    message = str(raised.value)
    assert "found none" in message and "meta package" in message
    assert "kernel: linux-image-7.3.4+deb13-amd64" in message
    # A plain .deb without a kernel keeps the bindeb-pkg hint.
    (tree / "DEBIAN/control").write_text(
        "Package: not-a-kernel\nVersion: 1\nArchitecture: amd64\n"
        "Maintainer: test <t@example.org>\nDescription: other\n"
    )
    other = tmp_path / "other.deb"
    build_deb(tree, other)
    with pytest.raises(GuestError, match="bindeb-pkg"):
        prepare_kernel(resolve_kernel(str(other)))
