"""Failed runs are impossible to miss: the failure box (counts by kind, cells with no ok
run), the pipeline's outcome step, and ``damon-eval campaign status``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from results_factory import CampaignSpec, make_result, run_specs, write_campaign

from damon_eval.analysis.failures import (
    NoSuccessfulRun,
    check_some_run_succeeded,
    summarize_failures,
)
from damon_eval.analysis.runtable import collect_runs, write_runs_csv
from damon_eval.config.campaign import load_campaign
from damon_eval.pipeline import outcome_step, summary_step

WORKLOADS = ("parsec3/canneal", "splash2x/fft")
CONFIGS = ("orig", "rec", "prcl")
# canneal never built: all its runs failed (build); fft's prcl repeat 1 timed out
SOME_FAILED = CampaignSpec(
    workloads=WORKLOADS,
    configs=CONFIGS,
    repeats=2,
    failures=[
        *((w, c, r, "build") for w in WORKLOADS[:1] for c in CONFIGS for r in (1, 2)),
        ("splash2x/fft", "prcl", 1, "timeout"),
    ],
)
ALL_FAILED = CampaignSpec(
    workloads=WORKLOADS,
    configs=CONFIGS,
    repeats=1,
    failures=[(w, c, 1, "build" if w == WORKLOADS[0] else "exit") for w in WORKLOADS
              for c in CONFIGS],
)  # fmt: skip


def _runs(tmp_path: Path, spec: CampaignSpec):
    write_campaign(tmp_path / "results", spec)
    return collect_runs(tmp_path / "results")


def test_failure_box_counts_by_kind_and_names_the_cells_without_an_ok_run(tmp_path):
    summary = summarize_failures(_runs(tmp_path, SOME_FAILED), "quick", CONFIGS)
    assert (summary.nr_runs, summary.nr_ok, summary.nr_failed) == (12, 5, 7)
    assert summary.by_kind == (("build", 6), ("timeout", 1))
    # fft prcl still has an ok repeat: only canneal's cells are empty, in campaign order
    assert summary.empty_cells == (("parsec3/canneal", ("orig", "rec", "prcl")),)
    text = summary.to_text()
    assert text.startswith("!! campaign quick: 7 of 12 runs failed (6 build, 1 timeout)\n")
    assert "!!   parsec3/canneal: orig, rec, prcl" in text
    box = summary.to_html()
    assert box.startswith('<div class="failure-box" role="alert"')
    assert "6 build, 1 timeout" in box and "parsec3/canneal: orig, rec, prcl" in box
    assert summary.to_rst().startswith(".. error::")
    check_some_run_succeeded(summary)  # some runs succeeded: no error


def test_no_failure_no_box(tmp_path):
    ok = CampaignSpec(workloads=WORKLOADS, configs=CONFIGS, repeats=1)
    summary = summarize_failures(_runs(tmp_path, ok), "fine", CONFIGS)
    assert not summary.any and summary.to_html() == "" and summary.to_rst() == ""
    assert summary.to_text() == "campaign fine: all 6 runs succeeded\n"


def test_all_failed_campaign_raises_after_the_summary_is_written(tmp_path):
    runs = _runs(tmp_path, ALL_FAILED)
    runs_csv = tmp_path / "results" / "summary" / "runs.csv"
    write_runs_csv(runs, runs_csv)
    summary_dir = runs_csv.parent
    summary_step(runs_csv, summary_dir, list(CONFIGS), "quick")
    failures = json.loads((summary_dir / "failures.json").read_text())
    assert failures["nr_ok"] == 0 and failures["failed_by_kind"] == {"build": 3, "exit": 3}
    assert failures["cells_without_ok_run"] == {
        "parsec3/canneal": list(CONFIGS),
        "splash2x/fft": list(CONFIGS),
    }
    headlines = (summary_dir / "headlines.html").read_text()
    body = headlines[headlines.index("<body") :]
    # the page opens with the box, before any headline
    assert body.index("failure-box") < body.index("</div>") < len(body)
    assert "NO RUN SUCCEEDED: 6 of 6 runs failed (3 build, 3 exit)" in headlines
    assert (summary_dir / "compare-seed.txt").read_text().startswith("!! campaign quick")
    assert (summary_dir / "headlines.rst").read_text().startswith(".. error::")
    with pytest.raises(NoSuccessfulRun, match="NO RUN SUCCEEDED: 6 of 6 runs failed"):
        outcome_step(summary_dir / "failures.json", summary_dir / "outcome.txt")
    assert not (summary_dir / "outcome.txt").exists()


def test_outcome_passes_with_some_ok_runs(tmp_path):
    runs = _runs(tmp_path, SOME_FAILED)
    runs_csv = tmp_path / "results" / "summary" / "runs.csv"
    write_runs_csv(runs, runs_csv)
    summary_step(runs_csv, runs_csv.parent, list(CONFIGS), "quick")
    outcome_step(runs_csv.parent / "failures.json", runs_csv.parent / "outcome.txt")
    assert "7 of 12 runs failed" in (runs_csv.parent / "outcome.txt").read_text()


# ---------------------------------------------------------------- campaign status


def _campaign_file(tmp_path: Path, results: Path) -> Path:
    from parsec_tree import fake_parsec_tree

    path = tmp_path / "campaign.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "campaign": "quick",
                "workloads": list(WORKLOADS),
                "configs": list(CONFIGS),
                "repeats": 2,
                "results_dir": str(results),
                "parsec": {"path": str(fake_parsec_tree(tmp_path / "parsec-3.0"))},
            }
        )
    )
    return path


def _status(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "damon_eval", "campaign", "status", *args],
        capture_output=True, text=True,
    )  # fmt: skip


def test_campaign_status_lists_failed_and_missing_runs_with_kind_and_reason(tmp_path):
    results = tmp_path / "results"
    written = write_campaign(results, SOME_FAILED)
    # two runs are not there yet; one of them failed a first attempt and is being retried
    fft_rec_2 = results / "runs/splash2x/fft/rec/02"
    (fft_rec_2 / "result.json").unlink()
    (results / "runs/splash2x/fft/orig/02/result.json").unlink()
    attempt = make_result(
        next(s for s in run_specs(SOME_FAILED) if s.config == "prcl" and s.repeat == 1
             and s.workload == "fft"), SOME_FAILED
    )  # fmt: skip
    (fft_rec_2 / "attempt-1").mkdir()
    (fft_rec_2 / "attempt-1" / "failure.json").write_text(json.dumps(attempt))
    assert len(written) == 12
    campaign = _campaign_file(tmp_path, results)
    proc = _status(str(campaign))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == (
        f"campaign quick ({results}): 12 runs: 3 done, 7 failed (6 build, 1 timeout), 2 missing"
    )
    assert (
        "failed   parsec3/canneal/orig/01  build: parsecmgmt -a build -p canneal "
        "-c gcc-damon-eval failed; its log ends:"
    ) in lines
    timeout = "timeout: workload timeout: no exit within 3600 s"
    assert f"failed   splash2x/fft/prcl/01  {timeout}" in lines
    assert "missing  splash2x/fft/orig/02" in lines
    assert (
        "missing  splash2x/fft/rec/02  (attempt 1 failed, timeout: workload timeout: no exit "
        "within 3600 s)"
    ) in lines
    # done runs only with --all
    assert not any(line.startswith("done") for line in lines)
    everything = _status(str(campaign), "--all").stdout.splitlines()
    assert "done     splash2x/fft/orig/01" in everything and len(everything) == 13
    data = json.loads(_status(str(campaign), "--json").stdout)
    assert (data["done"], data["failed"], data["missing"]) == (3, 7, 2)
    assert data["failed_by_kind"] == {"build": 6, "timeout": 1}


def test_campaign_status_says_when_no_run_succeeded(tmp_path):
    results = tmp_path / "results"
    write_campaign(results, ALL_FAILED)
    campaign = _campaign_file(tmp_path, tmp_path / "elsewhere")
    proc = _status(str(campaign), "--results", str(results))
    first = proc.stdout.splitlines()[0]
    # repeats: 2 in the campaign, 1 written: the second repeats are missing
    assert first.endswith(
        "12 runs: 0 done, 6 failed (3 build, 3 exit), 6 missing; NO RUN SUCCEEDED"
    )
    assert load_campaign(campaign).name == "quick"


def test_campaign_status_of_repeats_auto_counts_the_later_rounds_started(tmp_path):
    results = tmp_path / "results"
    write_campaign(results, CampaignSpec(workloads=WORKLOADS, configs=CONFIGS, repeats=3))
    campaign = _campaign_file(tmp_path, results)
    settings = yaml.safe_load(campaign.read_text())
    settings.update(repeats="auto", auto_repeats={"min_repeats": 2, "max_repeats": 4})
    campaign.write_text(yaml.safe_dump(settings))
    first = _status(str(campaign)).stdout.splitlines()[0]
    # round 1: 2 repeats of 6 cells; a third repeat of every cell was started too
    assert first.endswith("18 runs: 18 done, 0 failed, 0 missing"), first


def test_a_kernels_campaign_counts_each_kernels_runs_and_names_the_kernel():
    import pandas as pd

    rows = [
        {"suite": "synthetic", "workload": "zigzag", "config": config, "repeat": repeat,
         "metric": metric, "value": 1.0, "kernel": kernel,
         "status": "failed" if (kernel, config) == ("patched", "rec") else "ok",
         "failure_kind": "exit" if (kernel, config) == ("patched", "rec") else ""}
        for kernel in ("base", "patched") for config in ("orig", "rec")
        for repeat in (1, 2) for metric in ("runtime", "rss.avg")
    ]  # fmt: skip
    summary = summarize_failures(pd.DataFrame(rows), "ab", ("orig", "rec"))
    assert (summary.nr_runs, summary.nr_ok) == (8, 6)
    assert summary.by_kind == (("exit", 2),)
    assert summary.empty_cells == (("synthetic/zigzag (kernel patched)", ("rec",)),)
    # one kernel (or none recorded): cells are named as before
    single = summarize_failures(pd.DataFrame([r for r in rows if r["kernel"] == "base"]), "a")
    assert (single.nr_runs, single.empty_cells) == (4, ())
