"""End to end: `snakemake` on configs/ci.yaml in real guests, then the HTML report.

One short synthetic workload under all six configurations, one repeat: every
rule of the pipeline runs for real (campaign check, image, six measured runs
in TCG/KVM guests, run table, tables, plots, headlines, record reports,
provenance), then `snakemake --report` and headless Chromium.
"""

from __future__ import annotations

import json
import shutil

import pytest
from guest_helpers import run_snakemake

pytestmark = pytest.mark.guest


def _snakemake(repo_root, results, *args, timeout_s=3000):
    return run_snakemake("configs/ci.yaml", results, *args, timeout_s=timeout_s)


@pytest.fixture(scope="module")
def ci_campaign(repo_root, tmp_path_factory):
    missing = [t for t in ("qemu-system-x86_64", "qemu-img", "mmdebstrap") if not shutil.which(t)]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} to boot guests")
    results = tmp_path_factory.mktemp("ci") / "results"
    proc = _snakemake(repo_root, results, "--cores", "2")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return results


def test_every_run_succeeded_and_the_tables_exist(ci_campaign):
    results = ci_campaign
    runs = sorted((results / "runs").glob("*/*/*/*/result.json"))
    assert len(runs) == 6
    for path in runs:
        result = json.loads(path.read_text())
        assert result["status"] == "ok", (path, result["failure"])
        assert result["provenance"]["guest"]["accel"] in ("kvm", "tcg")
    runtime = (results / "summary" / "tables" / "runtime.txt").read_text().splitlines()
    assert runtime[0].split()[:2] == ["runtime", "orig"]
    assert runtime[1].startswith("synthetic/hotcold")
    assert any(line.startswith("total") for line in runtime)
    for metric in ("runtime", "memused.avg", "rss.avg", "kdamond_cpu_util", "pswpout"):
        assert (results / "summary" / "plots" / f"{metric}.png").stat().st_size > 5000
    for config in ("rec", "prec"):
        record_dir = results / "summary" / "records" / "synthetic" / "hotcold" / config / "01"
        assert (record_dir / "heatmap.png").stat().st_size > 5000
        assert (record_dir / "wss_sz.png").is_file()
    accuracy = (results / "summary" / "records/synthetic/hotcold/rec/01/accuracy.csv").read_text()
    assert "precision" in accuracy


def test_a_second_invocation_recomputes_nothing(repo_root, ci_campaign):
    proc = _snakemake(repo_root, ci_campaign, "--cores", "2", "-n")
    assert proc.returncode == 0
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_report_renders_in_chromium(repo_root, ci_campaign, tmp_path):
    from report_browser import check_report, require_chromium

    require_chromium()
    report = tmp_path / "report.html"
    proc = _snakemake(repo_root, ci_campaign, "--report", str(report), timeout_s=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    check_report(
        report,
        metric_tables=["runtime", "memused.avg", "rss.avg"],
        plots=["runtime", "rss.avg"],
        extra=[
            ("0. Headlines", "headlines", "prcl"),
            ("2. Published vs reproduced", "compare-seed", "published"),
            ("4. Access patterns", "heatmap", "<image>"),
            ("5. Provenance", "provenance", "raw"),
        ],
    )
