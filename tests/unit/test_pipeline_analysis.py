"""The analysis half of the pipeline, executed for real on generated run results.

The runs themselves need guests (tests/integration/test_pipeline_e2e.py); here
their results.json files come from the fixture generator, so every analysis
rule (collect, tables and plots per metric, headlines, comparison, provenance)
runs as Snakemake runs it, in parallel.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from parsec_tree import fake_parsec_tree
from results_factory import CampaignSpec, write_campaign

SNAKEMAKE = shutil.which("snakemake", path=str(Path(sys.executable).parent)) or "snakemake"


def _fixture_campaign(tmp_path, spec: CampaignSpec) -> Path:
    """Results of ``spec`` under tmp_path/results and a campaign file that plans them."""
    results = tmp_path / "results"
    written = write_campaign(results, spec)
    # The image manifest is older than the results, so no run is rescheduled.
    manifest = results / "guest" / "image.json"
    manifest.parent.mkdir(parents=True)
    manifest.write_text("{}\n")
    old = min(p.stat().st_mtime for p in written) - 100
    os.utime(manifest, (old, old))
    campaign = tmp_path / "campaign.yaml"
    campaign.write_text(
        yaml.safe_dump(
            {
                "campaign": "fixture",
                "workloads": list(spec.workloads),
                "configs": list(spec.configs),
                "repeats": spec.repeats,
                "results_dir": str(results),
                # `campaign check`, the pipeline's first job, needs the workloads available.
                "parsec": {"path": str(fake_parsec_tree(tmp_path / "parsec-3.0"))},
            }
        )
    )
    return campaign


def test_analysis_rules_build_every_summary_output(repo_root, tmp_path):
    results = tmp_path / "results"
    configs = ["orig", "thp", "ethp", "prcl"]
    workloads = ["parsec3/freqmine", "splash2x/fft"]
    campaign = _fixture_campaign(
        tmp_path,
        CampaignSpec(
            workloads=workloads, configs=configs, repeats=2, failures=[("splash2x/fft", "prcl", 2)]
        ),
    )
    proc = subprocess.run(
        [SNAKEMAKE, "--cores", "2", "--configfile", str(campaign)],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "rule run:" not in proc.stdout + proc.stderr
    summary = results / "summary"
    runtime = (summary / "tables" / "runtime.txt").read_text().splitlines()
    assert runtime[0].split()[:4] == ["runtime", "orig", "thp", "(overhead)"]
    rows = [line.split()[0] for line in runtime[1:] if not line.startswith("#")]
    assert rows == ["parsec3/freqmine", "splash2x/fft", "total"]
    assert "# failed runs (not in any mean): splash2x/fft prcl x1" in runtime
    # The failed run is counted in the CSV form, not averaged.
    assert "splash2x/fft" in (summary / "tables" / "runtime.csv").read_text()
    # No DAMON-recording configuration here, and kdamond CPU is measured only with DAMON.
    assert (summary / "plots" / "runtime.png").stat().st_size > 10_000
    headlines = json.loads((summary / "headlines.json").read_text())
    assert "published" in headlines and "reproduced" in headlines
    # prcl runs a kdamond: its CPU use is stated, not listed as missing
    assert "kdamond_cpu_max_pct" in headlines["reproduced"]["numbers"]
    assert not any("kdamond" in s for s in headlines["reproduced"]["skipped"])
    assert "tcg" in (summary / "compare-seed.txt").read_text().lower()
    provenance = (summary / "provenance.html").read_text()
    assert "splash2x/fft/prcl/02" in provenance
    # one failed run: the box opens the headlines; the pipeline still succeeds
    assert (
        "campaign fixture: 1 of 16 runs failed (1 exit)" in (summary / "headlines.html").read_text()
    )
    assert (summary / "outcome.txt").read_text().startswith("!! campaign fixture: 1 of 16")
    # Resume: a second invocation has nothing to do.
    again = subprocess.run(
        [SNAKEMAKE, "--cores", "2", "--configfile", str(campaign), "-n"],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert "Nothing to be done" in again.stdout + again.stderr


def test_a_campaign_with_no_successful_run_fails_after_writing_its_summary(repo_root, tmp_path):
    configs = ["orig", "rec"]  # rec: its record pages must not stop the pipeline first
    workloads = ["parsec3/canneal", "splash2x/fft"]
    campaign = _fixture_campaign(
        tmp_path,
        CampaignSpec(
            workloads=workloads,
            configs=configs,
            repeats=1,
            failures=[(w, c, 1, "build") for w in workloads for c in configs],
        ),
    )
    proc = subprocess.run(
        [SNAKEMAKE, "--cores", "2", "--configfile", str(campaign)],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output[-3000:]
    assert "Error in rule outcome" in output
    assert "campaign fixture: NO RUN SUCCEEDED: 4 of 4 runs failed (4 build)" in output
    summary = tmp_path / "results" / "summary"
    failures = json.loads((summary / "failures.json").read_text())
    assert failures["nr_ok"] == 0 and failures["failed_by_kind"] == {"build": 4}
    assert "NO RUN SUCCEEDED" in (summary / "headlines.html").read_text()
    assert (summary / "provenance.html").is_file() and (summary / "tables/runtime.html").is_file()
    assert not (summary / "outcome.txt").exists()
    # the report's front page opens with the box
    report = tmp_path / "report.html"
    made = subprocess.run(
        [SNAKEMAKE, "--configfile", str(campaign), "--report", str(report)],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert made.returncode == 0, made.stderr[-3000:]
    assert "NO RUN SUCCEEDED: 4 of 4 runs failed (4 build)" in report.read_text()


def test_html_report_renders_in_chromium(repo_root, tmp_path):
    """`snakemake --report` of the fixture campaign, opened in headless Chromium."""
    from report_browser import check_report, require_chromium

    require_chromium()
    test_analysis_rules_build_every_summary_output(repo_root, tmp_path)
    report = tmp_path / "report.html"
    proc = subprocess.run(
        [SNAKEMAKE, "--configfile", str(tmp_path / "campaign.yaml"), "--report", str(report)],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    check_report(
        report,
        metric_tables=["runtime", "memused.avg", "rss.avg"],
        plots=["runtime"],
        extra=[
            ("0. Headlines", "headlines", "THP"),
            ("2. Published vs reproduced", "compare-seed", "published"),
            ("5. Provenance", "provenance", "Failed runs"),
        ],
    )
