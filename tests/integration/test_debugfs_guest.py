"""The legacy debugfs back end against a real kernel: 6.12 built with CONFIG_DAMON_DBGFS.

trixie's packaged kernel leaves the deprecated debugfs interface out, so these
tests boot a kernel built from source with ``configs/kernels/dbgfs.config``
(6.12 still has the interface).  The kernel goes through the normal source
preparation: the cache's build when its key (source, configs, the build code)
matches, else a build from ``linux-source-6.12`` (the minimal config: 355 s on
the 2-core development host, docs/benchmarks.md), so a change to
kernel_prepare.py is tested on the kernel it builds.
``DAMON_EVAL_TEST_BUILD_KERNEL=0`` turns the build off.  Without the source, or
without a matching build when building is off, they skip, saying why.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from guest_helpers import ACCEL, REPO, require_image_build, source_kernel_or_skip

from damon_eval.damon.controller import build_kdamond
from damon_eval.damon.debugfs import DebugfsBackend
from damon_eval.damon.model import Target
from damon_eval.damon.schemes import parse_schemes

# slow: builds the kernel from source (about 6 min) when this code's build is not cached.
pytestmark = [pytest.mark.guest, pytest.mark.slow]

SOURCE = Path("/usr/src/linux-source-6.12.tar.xz")
FRAGMENT = REPO / "configs" / "kernels" / "dbgfs.config"
DEBUGFS_DAMON = "/sys/kernel/debug/damon"


BUILD_OPT_OUT = "DAMON_EVAL_TEST_BUILD_KERNEL"
DBGFS_KERNEL = {"source": str(SOURCE), "config": str(FRAGMENT)}


@pytest.fixture(scope="module")
def dbgfs_guest(tmp_path_factory):
    require_image_build("building an image with an own kernel needs root")
    from damon_eval.guest import Guest, build_image, load_spec

    # The normal source-kernel preparation: a cache hit only under this code's key.
    source_kernel_or_skip(DBGFS_KERNEL, BUILD_OPT_OUT, "apt-get install linux-source-6.12")
    work = tmp_path_factory.mktemp("dbgfs")
    image, _ = build_image(load_spec().with_kernel(DBGFS_KERNEL), progress=False)
    kernel = image.manifest()["kernel"]
    assert kernel["form"] == "source" and kernel["source_sha256"]
    assert kernel["config_lines"]["CONFIG_DAMON_DBGFS_DEPRECATED"] == "y"
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
