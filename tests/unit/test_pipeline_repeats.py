"""repeats: auto in the pipeline: the round step on fixture results, and Snakemake's
checkpoint loop run for real on fixture results (no guest: every run already exists)."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from results_factory import CampaignSpec, RunSpec, make_result, write_result

from damon_eval.analysis.adaptive import CONTINUE_WIDE, STOP_LIMIT, STOP_PRECISE
from damon_eval.pipeline import repeats_round_step, repeats_summary_step

SNAKEMAKE = shutil.which("snakemake", path=str(Path(sys.executable).parent)) or "snakemake"
WORKLOAD = "synthetic/hotcold"
QUIET = [100.0, 100.1, 99.9]  # 95% CI half-width 0.25 % of the mean
NOISY = [100.0, 130.0, 80.0, 120.0, 90.0]  # stays above 2 % at every n
RULE = {"min_repeats": 3, "max_repeats": 5, "target_rel_half_width": 0.02, "metric": "runtime"}


def write_runs(results: Path, runtimes: dict[str, list[float]]) -> list[Path]:
    campaign = CampaignSpec(workloads=(WORKLOAD,), configs=tuple(runtimes))
    suite, workload = WORKLOAD.split("/")
    paths = []
    for config, values in runtimes.items():
        for repeat, runtime in enumerate(values, start=1):
            result = make_result(RunSpec(suite, workload, config, repeat), campaign)
            result["metrics"]["runtime"] = runtime
            paths.append(write_result(results, result))
    return paths


def rows_by_config(path: Path) -> dict[str, dict]:
    with path.open() as lines:
        return {r["config"]: r for r in csv.DictReader(lines)}


def test_round_step_gives_the_noisy_cell_one_more_repeat(tmp_path):
    paths = write_runs(tmp_path, {"orig": QUIET, "prcl": NOISY[:3]})
    out = tmp_path / "repeats" / "round-1.json"
    repeats_round_step(paths, RULE, 1, out)
    round_1 = json.loads(out.read_text())
    assert round_1["next_runs"] == [f"{WORKLOAD}/prcl/04"]
    reasons = {d["config"]: d["reason"] for d in round_1["decisions"]}
    assert reasons == {"orig": STOP_PRECISE, "prcl": CONTINUE_WIDE}
    with pytest.raises(Exception, match="not the last round"):
        repeats_summary_step(out, tmp_path / "r.csv", tmp_path / "r.html")


def test_summary_names_why_each_cell_stopped(tmp_path):
    paths = write_runs(tmp_path, {"orig": QUIET, "prcl": NOISY})
    out = tmp_path / "repeats" / "round-3.json"
    repeats_round_step(paths, RULE, 3, out)
    repeats_summary_step(out, tmp_path / "repeats.csv", tmp_path / "repeats.html")
    rows = rows_by_config(tmp_path / "repeats.csv")
    assert (rows["orig"]["repeats_run"], rows["orig"]["reason"]) == ("3", STOP_PRECISE)
    assert (rows["prcl"]["repeats_run"], rows["prcl"]["reason"]) == ("5", STOP_LIMIT)
    page = (tmp_path / "repeats.html").read_text()
    assert "1 cell(s) ci_narrow_enough" in page and "1 cell(s) max_repeats_reached" in page


def test_snakemake_checkpoints_repeat_the_noisy_cell_until_max(tmp_path, repo_root):
    """Every run the rounds may ask for exists, except the quiet cell's 4th: had the
    pipeline asked for it, Snakemake would have tried to boot a guest and failed."""
    write_runs(tmp_path / "results", {"orig": QUIET, "prcl": NOISY})
    campaign = {
        "campaign": "auto-test",
        "workloads": [WORKLOAD],
        "configs": ["orig", "prcl"],
        "repeats": "auto",
        "auto_repeats": {"min_repeats": 3, "max_repeats": 5, "target_ci": 0.02},
    }
    (tmp_path / "campaign.yaml").write_text(yaml.safe_dump(campaign))
    (tmp_path / "configs").symlink_to(repo_root / "configs")
    # the checks and the image the runs were made with (older than the runs: no rerun)
    for name in ("campaign.checked", "guest/image.json"):
        (tmp_path / "results" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "results" / name).write_text("{}\n")
    proc = subprocess.run(
        [
            SNAKEMAKE,
            "--snakefile",
            str(repo_root / "Snakefile"),
            "--configfile",
            "campaign.yaml",
            "--cores",
            "1",
            "--rerun-triggers=mtime",
            "--",
            "results/summary/repeats.csv",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "rule run:" not in proc.stdout + proc.stderr  # no run was (re)made
    rounds = sorted(p.name for p in (tmp_path / "results" / "repeats").glob("round-*.json"))
    assert rounds == ["round-1.json", "round-2.json", "round-3.json"]
    rows = rows_by_config(tmp_path / "results" / "summary" / "repeats.csv")
    assert (rows["orig"]["repeats_run"], rows["orig"]["reason"]) == ("3", STOP_PRECISE)
    assert (rows["prcl"]["repeats_run"], rows["prcl"]["reason"]) == ("5", STOP_LIMIT)
