"""PARSEC built once on the host in a chroot of the guest image: mode, key, preparation."""

from __future__ import annotations

import json

import pytest
from parsec_tree import fake_parsec_tree

from damon_eval.errors import ConfigError, GuestError
from damon_eval.workloads import (
    RunParams,
    WorkloadContext,
    WorkloadUnavailable,
    get_workload,
    parsec_host,
)
from damon_eval.workloads.parsec_build import build_mode, host_build_inputs
from damon_eval.workloads.parsec_host import ARCHIVE_NAME, built_dir, host_build_key

WORKLOADS = ["parsec3/streamcluster", "splash2x/fft", "synthetic/hotcold"]


def _context(tmp_path, build="host", workloads=WORKLOADS, **parsec):
    root = fake_parsec_tree(tmp_path / "parsec-3.0", "simsmall")
    return WorkloadContext.from_config(
        {
            "parsec": {"path": str(root), "input": "simsmall", "build": build, **parsec},
            "workloads": workloads,
            "guest": {"spec": "guest/parsec.yaml"},
        }
    )


def _fake_image(packages="gcc 14.2.0-19\ng++ 14.2.0-19\n"):
    """A cached image for guest/parsec.yaml: only what a host build reads of it."""
    from damon_eval.guest.cache import images_dir
    from damon_eval.guest.spec import image_key, load_spec
    from damon_eval.paths import configs_dir

    path = images_dir() / image_key(load_spec(configs_dir() / "guest" / "parsec.yaml"))
    (path / "ssh").mkdir(parents=True, exist_ok=True)
    for name in ("base.qcow2", "vmlinuz", "initrd.img", "known_hosts", "ssh/id_ed25519"):
        (path / name).write_text("")
    (path / "manifest.json").write_text("{}")
    (path / "packages.txt").write_text(packages)
    return path


def test_build_mode_is_validated_and_auto_follows_what_the_host_can(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match=r"parsec.build 'chroot' is not one of auto, host, guest"):
        _context(tmp_path, build="chroot")
    monkeypatch.setattr(parsec_host, "missing_host_tools", lambda: [])
    assert parsec_host.resolve_build_mode("auto") == "host"
    monkeypatch.setattr(parsec_host, "missing_host_tools", lambda: ["debugfs"])
    assert parsec_host.resolve_build_mode("auto") == "guest"
    assert parsec_host.resolve_build_mode("host") == "host"


def test_auto_without_a_campaign_package_list_builds_in_the_guest(tmp_path, monkeypatch):
    monkeypatch.setattr(parsec_host, "missing_host_tools", lambda: [])
    context = _context(tmp_path, build="auto", workloads=[])
    assert build_mode(context.parsec) == "guest"
    assert context.parsec.campaign_packages == ()


def test_the_campaign_packages_and_spec_key_the_host_build(tmp_path, monkeypatch):
    monkeypatch.setenv("DAMON_EVAL_CACHE", str(tmp_path / "cache"))
    context = _context(tmp_path)
    assert context.parsec.campaign_packages == ("parsec3/streamcluster", "splash2x/fft")
    with pytest.raises(GuestError, match=r"guest image for spec guest/parsec.yaml is not built"):
        host_build_inputs(context.parsec)
    _fake_image()
    inputs = host_build_inputs(context.parsec)
    # The image's userland keys the build, not the harness code that built the image.
    _fake_image("gcc 14.2.0-20\n")
    assert host_build_inputs(context.parsec)["key"] != inputs["key"]
    _fake_image()
    assert inputs["identity"]["packages"] == ["splash2x.fft", "streamcluster"]
    assert [name for name, _ in inputs["package_commands"]] == ["streamcluster", "splash2x.fft"]
    assert (
        "parsecmgmt -a build -p splash2x.fft -c gcc-damon-eval" in inputs["package_commands"][1][1]
    )
    assert "gcc-damon-eval.bldconf" in inputs["setup_command"]
    base = dict(
        source="s",
        packages=["a", "b"],
        image_userland="i",
        guest_root="/opt/p",
        bldconf="c",
        patches=[],
    )
    key = host_build_key(**base)
    assert host_build_key(**{**base, "packages": ["b", "a"]}) == key  # order does not matter
    for name, value in [
        ("source", "s2"),
        ("packages", ["a"]),
        ("image_userland", "j"),
        ("guest_root", "/opt/q"),
        ("bldconf", "d"),
        ("patches", [("x.patch", "h")]),
    ]:
        assert host_build_key(**{**base, name: value}) != key, name


def test_prepare_uploads_the_built_archive_or_says_how_to_build_it(tmp_path, monkeypatch):
    monkeypatch.setenv("DAMON_EVAL_CACHE", str(tmp_path / "cache"))
    context = _context(tmp_path)
    _fake_image()
    workload = get_workload("splash2x/fft")
    with pytest.raises(WorkloadUnavailable, match=r"damon-eval parsec build CAMPAIGN"):
        workload.prepare(context, RunParams(out_dir="/r"))
    key = host_build_inputs(context.parsec)["key"]
    directory = built_dir(key)
    directory.mkdir(parents=True)
    (directory / ARCHIVE_NAME).write_bytes(b"built")
    summary = {"key": key, "packages": {"splash2x.fft": {"ok": True, "seconds": 1.0}}}
    (directory / "build.json").write_text(json.dumps(summary))
    plan = workload.prepare(context, RunParams(out_dir="/r"))
    assert [u.source for u in plan.uploads] == [directory / ARCHIVE_NAME]
    assert len(plan.commands) == 1 and "parsecmgmt -a build" not in plan.commands[0]
    assert f"built-{key}" in plan.commands[0]
    assert plan.stamp.endswith(f"splash2x.fft-{key}")
    assert workload.version(context).endswith(f":built:host:{key}")


def test_guest_mode_keeps_the_in_guest_build(tmp_path, monkeypatch):
    monkeypatch.setenv("DAMON_EVAL_CACHE", str(tmp_path / "cache"))
    context = _context(tmp_path, build="guest")
    plan = get_workload("splash2x/fft").prepare(context, RunParams(out_dir="/r"))
    assert "parsecmgmt -a build -p splash2x.fft" in plan.commands[-1]
    assert get_workload("splash2x/fft").version(context).endswith(":built:guest")


def test_a_host_build_without_root_names_what_is_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("DAMON_EVAL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(
        parsec_host, "missing_host_tools", lambda: ["root (chroot and mount need it)"]
    )
    with pytest.raises(Exception, match=r"needs root .*or set parsec.build: guest"):
        parsec_host.build_on_host(
            key="k", source=tmp_path, disk_qcow2=tmp_path / "d.qcow2", guest_root="/opt/p",
            uploads=[], setup_command="true", package_commands=[], identity={},
        )  # fmt: skip


def test_a_host_build_finds_the_campaign_packages_without_the_registry(tmp_path):
    from damon_eval.workloads.base import ParsecSource
    from damon_eval.workloads.parsec_build import _campaign_packages

    source = ParsecSource(tmp_path, campaign_packages=("parsec3/canneal", "splash2x/fft"))
    assert _campaign_packages(source) == [
        ("canneal", "pkgs/kernels/canneal"),
        ("splash2x.fft", "ext/splash2x/kernels/fft"),
    ]
    # the same names and directories the workloads run
    for package, directory in _campaign_packages(source):
        workload = get_workload(
            "splash2x/fft" if package.startswith("splash2x.") else f"parsec3/{package}"
        )
        assert (workload.package, workload.relative_dir) == (package, directory)
    unknown = ParsecSource(tmp_path, campaign_packages=("parsec3/nosuch",))
    with pytest.raises(ConfigError, match=r"unknown workload 'parsec3/nosuch' \(parsec3 has: "):
        host_build_inputs(unknown)


def test_build_only_packages_join_the_host_build_but_not_the_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("DAMON_EVAL_CACHE", str(tmp_path / "cache"))
    context = _context(tmp_path, build_only=["splash2x/raytrace", "splash2x/fft"])
    # the runs' packages first, then those only built; a package named twice builds once
    assert context.parsec.campaign_packages == (
        "parsec3/streamcluster",
        "splash2x/fft",
        "splash2x/raytrace",
    )
    _fake_image()
    with_extra = host_build_inputs(context.parsec)
    assert with_extra["identity"]["packages"] == [
        "splash2x.fft",
        "splash2x.raytrace",
        "streamcluster",
    ]
    assert with_extra["key"] != host_build_inputs(_context(tmp_path / "b").parsec)["key"]


def test_build_only_is_refused_with_a_guest_build_and_with_a_bad_entry(tmp_path):
    with pytest.raises(ConfigError, match=r"parsec.build_only needs parsec.build host or auto"):
        _context(tmp_path, build="guest", build_only=["parsec3/facesim"])
    with pytest.raises(
        ConfigError, match=r"build_only entry 'synthetic/hotcold' is not a parsec3/"
    ):
        _context(tmp_path / "b", build_only=["synthetic/hotcold"])
    with pytest.raises(ConfigError, match=r"must be a list of parsec3/ or splash2x/ workloads"):
        _context(tmp_path / "c", build_only="parsec3/facesim")


def test_a_campaign_checks_build_only_before_anything_runs(tmp_path):
    from damon_eval.config.campaign import campaign_from_dict

    base = {
        "campaign": "c",
        "workloads": ["parsec3/streamcluster"],
        "configs": ["orig"],
        "parsec": {"path": str(tmp_path), "build_only": ["parsec3/facesim"]},
    }
    campaign = campaign_from_dict(base, tmp_path / "c.yaml")
    assert campaign.settings["parsec"]["build_only"] == ["parsec3/facesim"]
    bad = {**base, "parsec": {"path": str(tmp_path), "build_only": ["parsec3/nosuch"]}}
    with pytest.raises(ConfigError, match=r"parsec.build_only: .*'parsec3/nosuch'"):
        campaign_from_dict(bad, tmp_path / "c.yaml")
    guest = {**base, "parsec": {**base["parsec"], "build": "guest"}}
    with pytest.raises(ConfigError, match=r"c.yaml: parsec.build_only needs parsec.build host"):
        campaign_from_dict(guest, tmp_path / "c.yaml")
    pattern = {**base, "parsec": {"path": str(tmp_path), "build_only": ["facesim"]}}
    with pytest.raises(ConfigError, match=r"build_only"):
        campaign_from_dict(pattern, tmp_path / "c.yaml")
