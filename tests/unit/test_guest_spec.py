"""Guest image spec: schema errors, defaults, cache key."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from fake_kernels import make_build_dir

from damon_eval.errors import ConfigError
from damon_eval.guest import spec as spec_mod
from damon_eval.guest.spec import REQUIRED_PACKAGES, image_key, load_spec, parse_spec
from damon_eval.schema import load_schema


def test_default_spec_is_valid_and_has_what_runs_need(repo_root):
    spec = load_spec(repo_root / "configs" / "guest" / "default.yaml")
    assert spec.suite == "trixie"
    wanted = {
        "gcc", "libc6-dev", "make", "python3", "zstd", "kmod", "procps", "util-linux",
        "iproute2", "coreutils", "x264", "libvips-tools", "redis-server", "redis-tools",
    }  # fmt: skip
    assert wanted <= set(spec.packages)
    assert "redis-server.service" in spec.disable_units
    assert {"virtio_blk", "ext4"} <= set(spec.initramfs_modules)
    assert spec.disk_size_mib == 4096


def test_defaults_are_filled_in():
    spec = parse_spec({"suite": "trixie"})
    assert spec.mirror == "http://deb.debian.org/debian"
    assert spec.kernel_package == "linux-image-amd64"
    assert spec.components == ("main",)
    assert spec.packages == ()
    assert spec.all_packages()[0] == "linux-image-amd64"
    assert set(REQUIRED_PACKAGES) <= set(spec.all_packages())


def test_all_packages_has_no_duplicates():
    spec = parse_spec({"suite": "trixie", "packages": ["kmod", "gcc"]})
    packages = spec.all_packages()
    assert len(packages) == len(set(packages))
    assert packages[-1] == "gcc"


def test_unknown_key_names_the_valid_ones():
    with pytest.raises(ConfigError) as excinfo:
        parse_spec({"suite": "trixie", "pakages": ["gcc"]}, source="x.yaml")
    message = str(excinfo.value)
    assert "x.yaml" in message and "'pakages'" in message
    assert "valid keys:" in message and "packages" in message


def test_wrong_type_names_the_key_and_its_meaning():
    with pytest.raises(ConfigError) as excinfo:
        parse_spec({"suite": "trixie", "packages": ["gcc", 5]})
    message = str(excinfo.value)
    assert "packages[1]" in message
    assert "is not of type 'string'" in message
    assert "Extra Debian packages" in message


def test_bad_disk_size_shows_the_pattern():
    with pytest.raises(ConfigError, match=r"disk_size: '4 GB' does not match"):
        parse_spec({"suite": "trixie", "disk_size": "4 GB"})


def test_missing_suite_is_reported():
    with pytest.raises(ConfigError, match="'suite' is a required property"):
        parse_spec({})


def test_several_errors_are_reported_together():
    with pytest.raises(ConfigError) as excinfo:
        parse_spec({"suite": "Trixie!", "disk_size": "x"})
    assert "suite" in str(excinfo.value) and "disk_size" in str(excinfo.value)


def test_load_spec_missing_file_lists_available(tmp_path, monkeypatch):
    (tmp_path / "guest").mkdir()
    (tmp_path / "guest" / "small.yaml").write_text("suite: trixie\n")
    monkeypatch.setenv("DAMON_EVAL_CONFIGS", str(tmp_path))
    with pytest.raises(ConfigError, match=r"does not exist.*small\.yaml"):
        load_spec(tmp_path / "guest" / "nope.yaml")


def test_load_spec_rejects_non_mapping_and_bad_yaml(tmp_path):
    listing = tmp_path / "list.yaml"
    listing.write_text("- trixie\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_spec(listing)
    broken = tmp_path / "broken.yaml"
    broken.write_text("suite: [trixie\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_spec(broken)


def test_image_key_is_stable_and_ignores_explicit_defaults():
    implicit = parse_spec({"suite": "trixie"})
    explicit = parse_spec({"suite": "trixie", "mirror": "http://deb.debian.org/debian/"})
    assert image_key(implicit) == image_key(explicit)
    assert len(image_key(implicit)) == 16
    # Where the spec was read from does not matter, only its content.
    assert image_key(parse_spec({"suite": "trixie"}, source="a.yaml")) == image_key(implicit)


def test_image_key_changes_with_content():
    base = image_key(parse_spec({"suite": "trixie"}))
    assert image_key(parse_spec({"suite": "trixie", "packages": ["gcc"]})) != base
    assert image_key(parse_spec({"suite": "forky"})) != base
    assert image_key(parse_spec({"suite": "trixie", "disk_size": "8G"})) != base


def test_image_key_changes_with_build_code(monkeypatch, tmp_path):
    spec = parse_spec({"suite": "trixie"})
    before = image_key(spec)
    fake_code = tmp_path / "image.py"
    fake_code.write_text("# different build code\n")
    monkeypatch.setattr(spec_mod, "BUILD_CODE_FILES", (*spec_mod.BUILD_CODE_FILES, fake_code))
    assert image_key(spec) != before


def test_schema_file_defaults_validate_against_itself():
    # Every default in the schema must itself be valid input.
    schema = load_schema(spec_mod.SCHEMA_NAME)
    defaults = {key: prop["default"] for key, prop in schema["properties"].items()}
    parse_spec(yaml.safe_load(yaml.safe_dump(defaults)))


# ------------------------------------------------------------ own kernels


def _build_dir(root: Path, config: str = "CONFIG_DAMON=y\n") -> Path:
    return make_build_dir(root, config)


def test_spec_with_own_kernel_installs_no_kernel_package(tmp_path):
    build = _build_dir(tmp_path)
    spec = parse_spec({"suite": "trixie", "kernel": str(build)})
    assert spec.kernel is not None and spec.kernel.form == "build"
    assert "linux-image-amd64" not in spec.all_packages()
    assert spec.all_packages()[0] == REQUIRED_PACKAGES[0]
    assert spec.as_dict()["kernel"] == {"form": "build", "path": str(build)}
    assert "kernel" not in parse_spec({"suite": "trixie"}).as_dict()


def test_kernel_package_name_is_the_same_as_kernel_package(tmp_path):
    by_kernel = parse_spec({"suite": "trixie", "kernel": "linux-image-rt-amd64"})
    by_package = parse_spec({"suite": "trixie", "kernel_package": "linux-image-rt-amd64"})
    assert by_kernel == by_package and by_kernel.kernel is None
    assert image_key(by_kernel) == image_key(by_package)
    with pytest.raises(ConfigError, match=r"give kernel or kernel_package, not both"):
        parse_spec({"suite": "trixie", "kernel": "linux-image-amd64", "kernel_package": "xz"})


def test_image_key_follows_the_kernels_content(tmp_path):
    build = _build_dir(tmp_path)
    package_key = image_key(parse_spec({"suite": "trixie"}))
    own_key = image_key(parse_spec({"suite": "trixie", "kernel": str(build)}))
    assert own_key != package_key
    (build / ".config").write_text("CONFIG_DAMON=y\nCONFIG_ZRAM=y\n")
    assert image_key(parse_spec({"suite": "trixie", "kernel": str(build)})) != own_key
    moved = tmp_path / "moved"
    shutil.copytree(build, moved)
    assert image_key(parse_spec({"suite": "trixie", "kernel": str(moved)})) == image_key(
        parse_spec({"suite": "trixie", "kernel": str(build)})
    ), "the key follows the kernel's content, not its path"


def test_spec_kernel_paths_are_from_the_spec_files_directory(tmp_path):
    _build_dir(tmp_path)
    (tmp_path / "specs").mkdir()
    spec_file = tmp_path / "specs" / "own.yaml"
    spec_file.write_text("suite: trixie\nkernel: {build: ../linux-build}\n")
    assert load_spec(spec_file).kernel.path == tmp_path / "linux-build"
    spec_file.write_text("suite: trixie\nkernel: {build: linux-build}\n")
    with pytest.raises(ConfigError, match=r"own.yaml: kernel build 'linux-build' does not exist"):
        load_spec(spec_file)


def test_schema_checks_the_kernel_mapping():
    with pytest.raises(ConfigError, match=r"kernel: .* is not valid under any of the given"):
        parse_spec({"suite": "trixie", "kernel": {"deb": 3}})
    with pytest.raises(ConfigError, match=r"kernel"):
        parse_spec({"suite": "trixie", "kernel": {"tree": "x"}})


def test_with_kernel_replaces_the_specs_kernel(tmp_path):
    build = _build_dir(tmp_path)
    spec = parse_spec({"suite": "trixie"})
    own = spec.with_kernel({"build": "linux-build"}, tmp_path)
    assert own.kernel.path == build and own.suite == "trixie"
    back = own.with_kernel("linux-image-amd64")
    assert back.kernel is None and image_key(back) == image_key(spec)


def test_spec_errors_come_from_the_shared_validator(monkeypatch):
    from damon_eval import schema
    from damon_eval.guest import spec as spec_module

    assert not hasattr(spec_module, "_describe_error")
    seen = []
    real = schema.validate

    def spy(instance, name, source, **kwargs):
        seen.append(name)
        return real(instance, name, source, **kwargs)

    monkeypatch.setattr(spec_module, "validate", spy)
    with pytest.raises(ConfigError) as excinfo:
        parse_spec({"suite": "trixie", "disk_size": "4 GB"}, source="x.yaml")
    assert seen == ["guest-image"]
    message = str(excinfo.value)
    assert message.startswith("invalid guest image spec x.yaml: disk_size: '4 GB' does not match")
    assert "Size of the guest root disk" in message  # the key's meaning, from the schema
