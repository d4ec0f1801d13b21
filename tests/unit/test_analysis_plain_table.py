"""Plain long tables in: only suite, workload, config, repeat, metric, value.

The seed's own per-workload means, written as a 6-column CSV with five
identical repeats, must give back the seed's tables byte for byte through
``damon-eval table`` (and the analysis must accept the same file).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_analysis_seed_tables import RUNTIME_4TH_DECIMAL, seed_text

from damon_eval.analysis.analyze import analyze
from damon_eval.analysis.reference import load_published
from damon_eval.analysis.runtable import COLUMN_DEFAULTS, read_runs_csv
from damon_eval.cli import main

REPEATS = 5


def write_plain_csv(path: Path, metric: str, overrides=None) -> Path:
    published = load_published(metric)
    samples = published.means_as_samples()
    for key, value in (overrides or {}).items():
        samples[key] = [value]
    lines = ["suite,workload,config,repeat,metric,value"]
    for (workload_id, config), (value,) in samples.items():
        suite, workload = workload_id.split("/", 1)
        lines += [
            f"{suite},{workload},{config},{repeat},{metric},{value!r}"
            for repeat in range(1, REPEATS + 1)
        ]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    ("metric", "overrides"),
    [("memused.avg", None), ("rss.avg", None), ("runtime", RUNTIME_4TH_DECIMAL)],
)
def test_seed_as_plain_csv_reproduces_the_seed_table(tmp_path, capsys, metric, overrides):
    plain = write_plain_csv(tmp_path / "plain.csv", metric, overrides)
    argv = ["table", "--metric", metric, "--arithmetic", "seed", str(plain)]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert captured.out == seed_text(metric)
    # the defaults are shown, on stderr so the table keeps the document's form
    assert "columns filled with defaults: status='ok', attempt=1" in captured.err
    assert captured.err.count("\n") == 1


def test_plain_table_gets_defaults(tmp_path):
    runs = read_runs_csv(write_plain_csv(tmp_path / "plain.csv", "rss.avg"))
    assert runs.attrs["defaulted_columns"] == COLUMN_DEFAULTS
    assert set(runs["status"]) == {"ok"}
    assert set(runs["attempt"]) == {1}
    assert len(runs) == 25 * 6 * REPEATS


def test_given_optional_columns_are_kept(tmp_path):
    path = tmp_path / "plain.csv"
    path.write_text(
        "suite,workload,config,repeat,metric,value,accel\n"
        "s,w,orig,1,runtime,10.0,tcg\n"
        "s,w,orig,2,runtime,,tcg\n"
    )
    runs = read_runs_csv(path)
    assert "accel" not in runs.attrs["defaulted_columns"]
    assert list(runs["accel"]) == ["tcg", "tcg"]


def test_analysis_accepts_plain_table_and_records_defaults(tmp_path):
    plain = write_plain_csv(tmp_path / "plain.csv", "memused.avg")
    analyze(plain, tmp_path / "out", with_plots=False, arithmetic="seed")
    assert (tmp_path / "out" / "tables" / "memused.avg.txt").read_text() == seed_text("memused.avg")
    manifest = json.loads((tmp_path / "out" / "analysis.json").read_text())
    assert manifest["defaulted_columns"] == COLUMN_DEFAULTS


def test_missing_required_column_names_it(tmp_path, capsys):
    path = tmp_path / "bad.csv"
    path.write_text("suite,workload,config,metric,value\ns,w,orig,runtime,1.0\n")
    assert main(["table", "--metric", "runtime", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "missing column(s) repeat; a plain table needs suite, workload, config, repeat" in err
