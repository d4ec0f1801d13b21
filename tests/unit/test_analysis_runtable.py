"""runs.csv from result.json files: rows, failed and retried runs, validation."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from results_factory import CampaignSpec, RunSpec, make_result, write_campaign, write_result

from damon_eval.analysis.errors import ResultFileError, RunTableError
from damon_eval.analysis.runtable import (
    RUNS_COLUMNS,
    collect_runs,
    load_result,
    ok_values,
    read_runs_csv,
    runs_csv_text,
    write_runs_csv,
)
from damon_eval.analysis.tables import build_table
from damon_eval.cli import main

CAMPAIGN = CampaignSpec(
    workloads=("synthetic/hotcold", "parsec3/freqmine"),
    repeats=3,
    failures=(("synthetic/hotcold", "prcl", 2),),
    retried=(("parsec3/freqmine", "thp", 1, 2), ("synthetic/hotcold", "prcl", 2, 3)),
)


@pytest.fixture
def results(tmp_path):
    write_campaign(tmp_path, CAMPAIGN)
    return tmp_path


def test_one_row_per_run_and_metric(results):
    frame = collect_runs(results)
    assert tuple(frame.columns) == RUNS_COLUMNS
    ok = frame[frame["status"] == "ok"]
    per_run = ok.groupby(["suite", "workload", "config", "repeat"]).size()
    assert len(per_run) == 2 * 6 * 3 - 1
    # orig has no kdamond and no DAMOS; prcl has both
    orig = ok[(ok["config"] == "orig") & (ok["repeat"] == 1) & (ok["workload"] == "freqmine")]
    assert "kdamond_cpu_util" not in set(orig["metric"])
    assert list(orig["metric"][:3]) == ["runtime", "memused.avg", "rss.avg"]
    row = orig[orig["metric"] == "runtime"].iloc[0]
    assert row["accel"] == "tcg" and row["guest_kernel"].startswith("6.12")
    assert row["result_path"] == "runs/parsec3/freqmine/orig/01/result.json"
    assert row["image_hash"] == "1672256f20f8a734/67453649998c63bb" and row["harness_revision"]


def test_failed_run_is_one_row_without_value(results):
    frame = collect_runs(results)
    failed = frame[frame["status"] == "failed"]
    assert len(failed) == 1
    row = failed.iloc[0]
    assert (row["workload"], row["config"], row["repeat"]) == ("hotcold", "prcl", 2)
    assert row["metric"] == "" and math.isnan(row["value"])
    assert row["failure_kind"] == "exit" and row["attempt"] == 3
    assert len(ok_values(frame)) == len(frame) - 1


def test_failed_runs_never_enter_means(results):
    frame = collect_runs(results)
    table = build_table(frame, "runtime")
    cell = table.cell("synthetic/hotcold", "prcl")
    runtimes = [
        json.loads((results / f"runs/synthetic/hotcold/prcl/{r:02d}/result.json").read_text())[
            "metrics"
        ]["runtime"]
        for r in (1, 3)
    ]
    assert cell.estimate.n == 2 and cell.nr_failed == 1
    assert cell.estimate.value == pytest.approx(sum(runtimes) / 2)


def test_retried_attempt_counts_as_its_run(results):
    frame = collect_runs(results)
    retried = frame[(frame["workload"] == "freqmine") & (frame["config"] == "thp")]
    assert set(retried[retried["repeat"] == 1]["attempt"]) == {2}
    assert build_table(frame, "runtime").cell("parsec3/freqmine", "thp").estimate.n == 3


def test_csv_round_trip_and_determinism(results, tmp_path):
    frame = collect_runs(results)
    path = tmp_path / "out" / "runs.csv"
    write_runs_csv(frame, path)
    again = read_runs_csv(path)
    assert runs_csv_text(again) == path.read_text()
    assert runs_csv_text(collect_runs(results)) == path.read_text()


def _write(results, obj):
    return write_result(results, obj)


def _valid(**run):
    spec = RunSpec(**{"suite": "synthetic", "workload": "w", "config": "orig", "repeat": 1, **run})
    return make_result(spec, CampaignSpec(workloads=("synthetic/w",)))


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda o: o.update(status="finished"),
            "status: 'finished' is not valid; valid values: ok",
        ),
        (lambda o: o["metrics"].update(runtim=1.0), "unknown metric 'runtim'; valid: runtime"),
        (lambda o: o["run"].pop("attempt"), "'attempt' is a required property"),
        (lambda o: o.update(status="failed"), "a failed run needs a failure object"),
        (
            lambda o: o.update(status="failed", failure={"kind": "exit", "reason": "x"}),
            "a failed run yields no numbers",
        ),
        (lambda o: o["metrics"].update(runtime="12"), "'12' is not of type 'number'"),
    ],
)
def test_invalid_result_names_the_file(tmp_path, mutate, message):
    obj = _valid()
    mutate(obj)
    path = _write(tmp_path, obj)
    with pytest.raises(ResultFileError) as info:
        collect_runs(tmp_path)
    assert str(path) in str(info.value)
    assert message in str(info.value)


def test_result_in_the_wrong_directory(tmp_path):
    obj = _valid()
    path = tmp_path / "runs/synthetic/w/rec/01/result.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(obj))
    with pytest.raises(ResultFileError, match=r"belongs in runs/synthetic/w/orig/01/result\.json"):
        collect_runs(tmp_path)


def test_not_json(tmp_path):
    path = tmp_path / "runs/synthetic/w/orig/01/result.json"
    path.parent.mkdir(parents=True)
    path.write_text("{truncated")
    with pytest.raises(ResultFileError, match="not valid JSON"):
        load_result(path)


def test_missing_runs_dir(tmp_path):
    with pytest.raises(RunTableError, match="no runs/ directory"):
        collect_runs(tmp_path)
    (tmp_path / "runs").mkdir()
    with pytest.raises(RunTableError, match=r"no result\.json files"):
        collect_runs(tmp_path)


def test_bad_runs_csv(tmp_path):
    path = tmp_path / "runs.csv"
    path.write_text("suite,workload\nx,y\n")
    with pytest.raises(RunTableError, match="missing column"):
        read_runs_csv(path)
    with pytest.raises(RunTableError, match="no such file"):
        read_runs_csv(tmp_path / "nope.csv")


def test_collect_command(results, capsys):
    assert main(["collect", str(results)]) == 0
    out = capsys.readouterr().out
    assert "36 runs (1 failed)" in out
    assert (results / "summary" / "runs.csv").is_file()


REAL_RESULT = Path(__file__).parents[1] / "fixtures" / "real-results"
REAL_RESULT = REAL_RESULT / "synthetic-hotcold-prcl-01.result.json"


def test_provenance_columns_of_a_real_guest_result(tmp_path):
    # result.json as a real TCG guest run wrote it (configs/default.yaml), not as a fixture
    # of ours imagines it: its guest kernel and image must reach the runs table.
    run_dir = tmp_path / "runs" / "synthetic" / "hotcold" / "prcl" / "01"
    run_dir.mkdir(parents=True)
    (run_dir / "result.json").write_text(REAL_RESULT.read_text())
    frame = collect_runs(tmp_path)
    row = frame[frame["metric"] == "runtime"].iloc[0]
    assert row["guest_kernel"] == "6.12.117+deb13-amd64"
    assert row["image_hash"] == "1672256f20f8a734/67453649998c63bb"
    assert row["accel"] == "tcg"
