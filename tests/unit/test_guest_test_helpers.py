"""The guest tests' own machinery: the source-kernel fixture helper uses the real
cache key, and the whole suite (`./bootstrap test`) runs the `slow` tests too."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib

import pytest

from damon_eval.guest.kernels import identity_key, resolve_kernel

OPT_OUT = "DAMON_EVAL_TEST_BUILD_KERNEL"


@pytest.fixture
def helpers(repo_root, monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(repo_root / "tests" / "integration"))
    monkeypatch.setenv("DAMON_EVAL_CACHE", str(tmp_path / "cache"))
    import guest_helpers

    return guest_helpers


@pytest.fixture
def source_kernel(tmp_path):
    source = tmp_path / "linux-source-6.12.tar.xz"
    source.write_bytes(b"not really a kernel source")
    fragment = tmp_path / "dbgfs.config"
    fragment.write_text("CONFIG_DAMON_DBGFS=y\n")
    return {"source": str(source), "config": str(fragment)}


def _plant_prepared_kernel(tmp_path, key: str) -> None:
    """A prepared DBGFS kernel in the cache under ``key``."""
    prepared = tmp_path / "cache" / "kernels" / key
    prepared.mkdir(parents=True)
    info = {"form": "source", "release": "6.12.1", "config_lines": {
        "CONFIG_DAMON_DBGFS": "y", "CONFIG_DAMON_DBGFS_DEPRECATED": "y"}}  # fmt: skip
    (prepared / "kernel.json").write_text(json.dumps(info))


def test_a_dbgfs_kernel_under_another_key_is_not_reused(helpers, source_kernel, tmp_path,
                                                       monkeypatch):  # fmt: skip
    # e.g. built by an older kernel_prepare.py: it has the options but not this code's key
    _plant_prepared_kernel(tmp_path, "0123456789abcdef")
    assert helpers.source_kernel_or_skip(source_kernel, OPT_OUT, "apt-get install x") is None
    monkeypatch.setenv(OPT_OUT, "0")
    key = identity_key(resolve_kernel(source_kernel).identity())
    with pytest.raises(pytest.skip.Exception, match=rf"no build of source .* \(key {key}\) and "
                       rf"{OPT_OUT}=0 turns building it off") as info:  # fmt: skip
        helpers.source_kernel_or_skip(source_kernel, OPT_OUT, "apt-get install x")
    assert "damon-eval guest build --kernel" in str(info.value)


def test_the_build_under_the_real_key_is_a_cache_hit(helpers, source_kernel, tmp_path,
                                                    monkeypatch):  # fmt: skip
    monkeypatch.setenv(OPT_OUT, "0")
    _plant_prepared_kernel(tmp_path, identity_key(resolve_kernel(source_kernel).identity()))
    prepared = helpers.source_kernel_or_skip(source_kernel, OPT_OUT, "apt-get install x")
    assert prepared is not None and prepared.release == "6.12.1"


def test_a_missing_kernel_source_skips_saying_why(helpers, source_kernel, tmp_path):
    missing = {**source_kernel, "source": str(tmp_path / "nosuch.tar.xz")}
    with pytest.raises(pytest.skip.Exception, match=r"nosuch.tar.xz is missing \(apt-get inst"):
        helpers.source_kernel_or_skip(missing, OPT_OUT, "apt-get install linux-source-6.12")


def test_the_whole_suite_runs_slow_tests(repo_root):
    # ./bootstrap test runs `pytest tests`: nothing there or in addopts may deselect them
    addopts = tomllib.loads((repo_root / "pyproject.toml").read_text())["tool"]["pytest"][
        "ini_options"
    ]["addopts"]
    assert "-m" not in addopts.split() and "slow" not in addopts
    (pytest_args,) = re.findall(r"^\s*exec python -m pytest (.*)$", (repo_root / "bootstrap")
                                .read_text(), re.M)  # fmt: skip
    assert "-m" not in pytest_args.split() and "slow" not in pytest_args
    # the marker is registered and the source-building tests carry it next to guest
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "--strict-markers",
         "-m", "slow and guest", "tests/integration/test_debugfs_guest.py"],
        cwd=repo_root, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"^(\d+) tests? collected", proc.stdout, re.M), proc.stdout
    assert "deselected" not in proc.stdout
