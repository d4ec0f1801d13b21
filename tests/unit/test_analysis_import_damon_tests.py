"""``damon-eval import damon-tests DIR``: a damon-tests results tree as runs.csv."""

from __future__ import annotations

from pathlib import Path

import pytest

from damon_eval.analysis.damon_tests import import_damon_tests
from damon_eval.analysis.runtable import read_runs_csv
from damon_eval.cli import main

COMMLOG = """\
[PARSEC] Running 'time $PARSECDIR/pkgs/apps/freqmine/inst/bin/freqmine'
the output of the workload

real\t{minutes}m{seconds}s
user\t1m2.000s
sys\t0m0.500s
"""


def write_run(root: Path, cell: str, repeat: int, *, minutes, seconds, memfree, rss, util=None):
    run_dir = root / "results" / cell / f"{repeat:02d}"
    run_dir.mkdir(parents=True)
    (run_dir / "commlog").write_text(COMMLOG.format(minutes=minutes, seconds=seconds))
    (run_dir / "memfree").write_text("".join(f"MemFree: {kib} kB\n" for kib in memfree))
    (run_dir / "memfps").write_text(
        "".join(f"  123456 {kib:>7} 4242 freqmine input.dat 11000\n" for kib in rss)
    )
    if util is not None:
        (run_dir / "kdamond_cpu_util").write_text("".join(f"{u}\n" for u in util))
    return run_dir


@pytest.fixture
def tree(tmp_path):
    write_run(
        tmp_path,
        "parsec3/freqmine/orig",
        1,
        minutes=1,
        seconds="10.250",
        memfree=[1000, 900, 800],
        rss=[100, 200],
    )
    write_run(
        tmp_path,
        "parsec3/freqmine/orig",
        2,
        minutes=1,
        seconds="10.750",
        memfree=[1000, 950],
        rss=[300],
    )
    write_run(
        tmp_path,
        "parsec3/freqmine/prcl",
        1,
        minutes=0,
        seconds="80.000",
        memfree=[2000, 1999, 1990],
        rss=[50, 60, 70],
        util=[0.001, 0.0042],
    )
    write_run(
        tmp_path,
        "parsec3/freqmine/prcl",
        2,
        minutes=0,
        seconds="90.000",
        memfree=[2000, 1900],
        rss=[10],
        util=[0.005],
    )
    return tmp_path


def value(frame, config, repeat, metric):
    row = frame[
        (frame["config"] == config) & (frame["repeat"] == repeat) & (frame["metric"] == metric)
    ]
    assert len(row) == 1, (config, repeat, metric)
    return row["value"].item()


def test_metrics_follow_damon_tests_definitions(tree):
    frame = import_damon_tests(tree)
    assert value(frame, "orig", 1, "runtime") == pytest.approx(70.25)
    assert value(frame, "orig", 2, "runtime") == pytest.approx(70.75)
    # memused: MemFree[0] - MemFree[t], integer mean: (0 + 100 + 200) / 3 = 100
    assert value(frame, "orig", 1, "memused.avg") == 100
    # (0 + 1 + 10) / 3 = 3.67 -> 3 (bash integer division)
    assert value(frame, "prcl", 1, "memused.avg") == 3
    assert value(frame, "orig", 1, "rss.avg") == 150
    assert value(frame, "prcl", 1, "rss.avg") == 60
    # the last cumulative sample x 100
    assert value(frame, "prcl", 1, "kdamond_cpu_util") == pytest.approx(0.42)
    assert not (frame[frame["config"] == "orig"]["metric"] == "kdamond_cpu_util").any()
    assert set(frame["status"]) == {"ok"}
    assert set(frame["result_path"]) == {
        "parsec3/freqmine/orig/01",
        "parsec3/freqmine/orig/02",
        "parsec3/freqmine/prcl/01",
        "parsec3/freqmine/prcl/02",
    }


def test_cli_writes_runs_csv_that_table_reads(tree, tmp_path, capsys):
    out = tmp_path / "runs.csv"
    assert main(["import", "damon-tests", str(tree), "-o", str(out)]) == 0
    assert "4 runs" in capsys.readouterr().out
    runs = read_runs_csv(out)
    assert runs.attrs["defaulted_columns"] == {}
    assert main(["table", "--metric", "runtime", str(out)]) == 0
    table = capsys.readouterr().out
    # orig mean 70.5, prcl mean 85: overhead (85 / 70.5 - 1) * 100 = 20.57 %
    assert "parsec3/freqmine" in table and "70.500" in table and "(20.57)" in table
    # the results/ directory itself is accepted too
    assert main(["import", "damon-tests", str(tree / "results"), "-o", str(out)]) == 0


def _error(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


def test_bad_commlog_names_the_file(tree, capsys):
    commlog = tree / "results/parsec3/freqmine/orig/02/commlog"
    commlog.write_text("real\tsoon\n")
    err = _error(capsys, ["import", "damon-tests", str(tree), "-o", str(tree / "r.csv")])
    assert f"{commlog}: no 'real XmY.YYYs' line" in err


def test_missing_commlog_names_the_file(tree, capsys):
    commlog = tree / "results/parsec3/freqmine/prcl/01/commlog"
    commlog.unlink()
    err = _error(capsys, ["import", "damon-tests", str(tree), "-o", str(tree / "r.csv")])
    assert f"{commlog}: missing" in err


def test_bad_sample_names_file_line_and_value(tree, capsys):
    memfree = tree / "results/parsec3/freqmine/orig/01/memfree"
    memfree.write_text("MemFree: 1000 kB\nMemFree: lots kB\n")
    err = _error(capsys, ["import", "damon-tests", str(tree), "-o", str(tree / "r.csv")])
    assert f"{memfree}:2: 'MemFree: lots kB' has no numeric sample" in err
    rss = tree / "results/parsec3/freqmine/orig/01/memfps"
    memfree.write_text("1000\n")
    rss.write_text("123 abc 1 freqmine\n")
    err = _error(capsys, ["import", "damon-tests", str(tree), "-o", str(tree / "r.csv")])
    assert f"{rss}:1: '123 abc 1 freqmine' is not 'vsz rss pid cmd'" in err


def test_tree_without_runs(tmp_path, capsys):
    (tmp_path / "results" / "parsec3").mkdir(parents=True)
    err = _error(capsys, ["import", "damon-tests", str(tmp_path), "-o", str(tmp_path / "r.csv")])
    assert "no run directories <suite>/<workload>/<config>/<NN>/" in err
    err = _error(capsys, ["import", "damon-tests", str(tmp_path / "nope")])
    assert "nope: not a directory" in err
