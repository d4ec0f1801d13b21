"""The legacy debugfs back end against a real kernel: 6.12 built with CONFIG_DAMON_DBGFS.

trixie's packaged kernel leaves the deprecated debugfs interface out, so these
tests boot a kernel built from source with ``configs/kernels/dbgfs.config``
(6.12 still has the interface).  The tests use a DBGFS kernel the cache already
holds (any prepared kernel whose config has ``CONFIG_DAMON_DBGFS=y``), else
build one from ``linux-source-6.12`` (the minimal config: 355 s on the 2-core
development host, docs/benchmarks.md); ``DAMON_EVAL_TEST_BUILD_KERNEL=0`` turns
the build off.  Without a cached kernel and the source they skip, saying why.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
from guest_helpers import ACCEL, REPO, require_image_build

from damon_eval.damon.controller import build_kdamond
from damon_eval.damon.debugfs import DebugfsBackend
from damon_eval.damon.model import Target
from damon_eval.damon.schemes import parse_schemes

pytestmark = pytest.mark.guest

SOURCE = Path("/usr/src/linux-source-6.12.tar.xz")
FRAGMENT = REPO / "configs" / "kernels" / "dbgfs.config"
DEBUGFS_DAMON = "/sys/kernel/debug/damon"


def _cached_dbgfs_kernel(work: Path) -> dict | None:
    """A prepared DBGFS kernel from the cache, as a ``build`` form kernel value."""
    from damon_eval.guest.kernel_prepare import kernels_dir

    for meta in sorted(kernels_dir().glob("*/kernel.json")):
        info = json.loads(meta.read_text())
        if info.get("config_lines", {}).get("CONFIG_DAMON_DBGFS_DEPRECATED") != "y":
            continue
        prepared = meta.parent
        build = work / "build"
        (build / "arch/x86/boot").mkdir(parents=True)
        shutil.copyfile(prepared / "vmlinuz", build / "arch/x86/boot/bzImage")
        shutil.copyfile(prepared / "config", build / ".config")
        (build / "include/config").mkdir(parents=True)
        (build / "include/config/kernel.release").write_text(info["release"] + "\n")
        return {"build": str(build), "modules": str(prepared / "modules")}
    return None


@pytest.fixture(scope="module")
def dbgfs_guest(tmp_path_factory):
    require_image_build("building an image with an own kernel needs root")
    from damon_eval.guest import Guest, build_image, load_spec

    work = tmp_path_factory.mktemp("dbgfs")
    kernel = _cached_dbgfs_kernel(work)
    if kernel is None:
        if os.environ.get("DAMON_EVAL_TEST_BUILD_KERNEL") == "0" or not SOURCE.is_file():
            why = (
                "DAMON_EVAL_TEST_BUILD_KERNEL=0"
                if SOURCE.is_file()
                else f"{SOURCE} is missing (apt-get install linux-source-6.12)"
            )
            pytest.skip(
                f"no kernel with CONFIG_DAMON_DBGFS in the kernel cache and {why}; build one "
                '(about 6 min on 2 cores) with `damon-eval guest build --kernel \'{"source": '
                f'"{SOURCE}", "config": "{FRAGMENT}"}}\'`'
            )
        kernel = {"source": str(SOURCE), "config": str(FRAGMENT)}
    image, _ = build_image(load_spec().with_kernel(kernel), progress=False)
    assert image.manifest()["kernel"]["config_lines"]["CONFIG_DAMON_DBGFS_DEPRECATED"] == "y"
    with Guest.start(image, fast_start=False, accel=ACCEL, run_dir=work / "run") as guest:
        yield guest


def _sleeper(guest) -> int:
    result = guest.run("nohup sleep 3600 >/dev/null 2>&1 </dev/null & echo $!", timeout_s=30)
    return int(result.stdout.strip())


def test_the_kernel_has_both_interfaces(dbgfs_guest):
    # 6.9+ (so 6.12) names the file monitor_on_DEPRECATED; the back end finds either.
    assert dbgfs_guest.fs.exists(f"{DEBUGFS_DAMON}/monitor_on_DEPRECATED")
    assert DebugfsBackend(dbgfs_guest.fs).monitor_file == "monitor_on_DEPRECATED"
    assert dbgfs_guest.fs.exists("/sys/kernel/mm/damon/admin/kdamonds")
    assert dbgfs_guest.fs.read(f"{DEBUGFS_DAMON}/monitor_on_DEPRECATED").strip() == "off"


def test_debugfs_back_end_monitors_and_applies_a_scheme(dbgfs_guest):
    guest = dbgfs_guest
    backend = DebugfsBackend(guest.fs)
    assert backend.features().interface == "debugfs"
    pid = _sleeper(guest)
    try:
        kdamond = build_kdamond(
            "vaddr", [Target(pid)], schemes=parse_schemes("null null null null null null stat")
        )[0]
        handle = backend.start(kdamond)
        assert guest.fs.read(f"{DEBUGFS_DAMON}/target_ids").split() == [str(pid)]
        assert backend.schemes_form == 18  # mainline's parser, not the seed's 7 fields
        assert handle.pid and guest.fs.read(f"/proc/{handle.pid}/comm").startswith("kdamond")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            (stats,) = backend.scheme_stats(handle)
            if stats.nr_tried > 0:
                break
            time.sleep(1)
        assert stats.nr_tried > 0 and stats.sz_tried > 0, stats
        assert backend.is_running(handle)
        assert backend.turn_off(handle) is True
        assert guest.fs.read(f"{DEBUGFS_DAMON}/{backend.monitor_file}").strip() == "off"
    finally:
        guest.run(f"kill {pid}", timeout_s=30)
