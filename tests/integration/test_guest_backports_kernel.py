"""A Debian kernel package from another suite: trixie-backports' linux-image-amd64
(NotAutomatic, so asked for by suite), installed by mmdebstrap and booted for real.
Needs the mirror; slow (an image build and a cold boot under TCG)."""

from __future__ import annotations

import pytest
from guest_helpers import ACCEL, require_image_build

pytestmark = pytest.mark.guest

BACKPORTS = {"package": "linux-image-amd64", "suite": "trixie-backports"}


def test_backports_kernel_boots_with_damon_sysfs_and_no_damon_stat(tmp_path):
    require_image_build("building an image needs root")
    from damon_eval.guest import Guest, build_image, load_spec

    default = load_spec()
    spec = default.with_kernel(BACKPORTS)
    image, _ = build_image(spec, progress=False)
    manifest = image.manifest()
    assert manifest["kernel"]["suite"] == "trixie-backports"
    assert manifest["spec"]["kernel_suite"] == "trixie-backports"
    default_release = build_image(default, progress=False)[0].manifest()["kernel_release"]
    release = manifest["kernel_release"]
    assert release != default_release, "backports must give a newer kernel than the suite's"
    packages = image.packages_path.read_text()
    assert "linux-image-amd64\t" in packages
    with Guest.start(image, fast_start=False, accel=ACCEL, run_dir=tmp_path / "run") as guest:
        assert guest.run("uname -r", timeout_s=30).stdout.strip() == release
        assert guest.fs.exists("/sys/kernel/mm/damon/admin/kdamonds")
        # DAMON_STAT's exclusive kdamond would make every sysfs kdamond fail (EBUSY).
        stat = guest.run("cat /sys/module/damon_stat/parameters/enabled", timeout_s=30)
        assert stat.exit_status != 0 or stat.stdout.strip() == "N"
        assert guest.facts()["kernel"]["config_lines"]["CONFIG_DAMON_SYSFS"] == "y"
