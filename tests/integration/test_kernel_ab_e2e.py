"""End to end: a `kernels:` campaign through `snakemake` in real guests.

Debian trixie's kernel (6.12) against trixie-backports' (7.x), as
configs/kernel-ab.yaml does, on one short synthetic workload (no download), orig
only, 2 repeats: both images built and checked before the first run, 4 measured
runs, runs.csv with its kernel column, per-kernel tables and the kernel
comparison (summary/kernels.*).
"""

from __future__ import annotations

import csv
import json
import re

import pytest
from guest_helpers import ACCEL, HOTCOLD_SCALE, require_images_of, run_snakemake

pytestmark = pytest.mark.guest

KERNELS = {
    "base": "linux-image-amd64",
    "patched": {"package": "linux-image-amd64", "suite": "trixie-backports"},
}
# Release prefixes of trixie's and trixie-backports' kernels.
RELEASES = {"base": "6.12.", "patched": "7."}
REPEATS = 2


@pytest.fixture(scope="module")
def kernel_ab_results(tmp_path_factory):
    import yaml

    require_images_of(list(KERNELS.values()))
    work = tmp_path_factory.mktemp("kernel-ab")
    results = work / "results"
    campaign = work / "kernel-ab-e2e.yaml"
    # configs/ci.yaml's guest and workload: its saved state may be cached already.
    campaign.write_text(
        yaml.safe_dump(
            {
                "campaign": "kernel-ab-e2e",
                "guest": {
                    "spec": "guest/default.yaml",
                    "vcpus": 2,
                    "memory_mib": 2048,
                    "accel": ACCEL,
                    "fast_start": True,
                },
                "kernels": KERNELS,
                "workloads": ["synthetic/hotcold"],
                "workload_scale": HOTCOLD_SCALE,
                "configs": ["orig"],
                "repeats": REPEATS,
                "max_attempts": 2,
                "run_timeout_s": 300,
                "results_dir": str(results),
            }
        )
    )
    proc = run_snakemake(campaign, results, "--cores", "2")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return results, proc.stdout + proc.stderr


def test_every_run_is_ok_on_the_kernel_its_key_names(kernel_ab_results):
    results, _ = kernel_ab_results
    runs = sorted((results / "runs").glob("*/*/*/*/*/result.json"))
    assert len(runs) == len(KERNELS) * REPEATS, runs
    for path in runs:
        kernel = path.relative_to(results / "runs").parts[0]
        result = json.loads(path.read_text())
        assert result["status"] == "ok", (path, result["failure"])
        guest = result["provenance"]["guest"]
        assert guest["kernel_release"].startswith(RELEASES[kernel]), (path, guest)
        assert guest["kernel"]["release"] == guest["kernel_release"]
    patched = json.loads(runs[-1].read_text())["provenance"]["guest"]["kernel"]
    assert runs[-1].relative_to(results / "runs").parts[0] == "patched"
    assert patched["suite"] == "trixie-backports"


def test_both_kernels_were_built_before_the_first_run(kernel_ab_results):
    _, log = kernel_ab_results
    # Snakemake's job events in order: ("start"|"done", rule)
    events = [
        ("start", m.group(1)) if m.group(1) else ("done", m.group(2))
        for m in re.finditer(
            r"^(?:local)?rule (\w+):$|^Finished jobid: \d+ \(Rule: (\w+)\)$", log, re.M
        )
    ]
    assert events.count(("done", "guest_image")) == len(KERNELS), events
    last_image = max(i for i, event in enumerate(events) if event == ("done", "guest_image"))
    assert last_image < events.index(("start", "run")), events


def test_runs_csv_and_the_kernel_comparison_name_both_kernels(kernel_ab_results):
    results, _ = kernel_ab_results
    summary = results / "summary"
    with open(summary / "runs.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {row["kernel"] for row in rows} == set(KERNELS)
    assert {row["status"] for row in rows} == {"ok"}
    for row in rows:
        assert row["guest_kernel"].startswith(RELEASES[row["kernel"]]), row
    with open(summary / "kernels.csv", newline="") as handle:
        comparison = list(csv.DictReader(handle))
    assert {row["kernel"] for row in comparison} == set(KERNELS)
    assert {(row["base"], row["patched"]) for row in comparison} == {("base", "patched")}
    headline = (summary / "kernels.rst").read_text()
    assert "patched" in headline and "base" in headline and "no successful runs" not in headline
    page = (summary / "kernels.html").read_text()
    assert "runtime, configuration orig" in page
    for kernel in KERNELS:
        assert (summary / "tables" / kernel / "runtime.txt").is_file()
