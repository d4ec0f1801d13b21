"""Atomic writes: all or nothing, and an unwritable output is a one-line user error."""

from __future__ import annotations

import os

import pytest
from record_samples import moving_hot, perf_script

from damon_eval import cli
from damon_eval.atomic import atomic_open, atomic_write_text
from damon_eval.errors import OutputError


def test_the_file_appears_whole_or_not_at_all(tmp_path):
    path = tmp_path / "sub" / "out.txt"
    atomic_write_text(path, "old\n")
    with pytest.raises(RuntimeError), atomic_open(path, "w") as out:
        out.write("half")
        raise RuntimeError("the writer failed")
    assert path.read_text() == "old\n"
    assert os.listdir(path.parent) == ["out.txt"]  # no temporary file left


def test_an_os_error_inside_the_block_is_the_callers_and_passes_unchanged(tmp_path):
    with pytest.raises(FileNotFoundError), atomic_open(tmp_path / "out", "w"):
        open(tmp_path / "missing-input")  # noqa: SIM115
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("parent", ["/proc/no-such-dir", "/proc/self"])
def test_an_unwritable_directory_is_an_output_error_naming_the_path(parent):
    with pytest.raises(OutputError, match=rf"cannot write {parent}/out.json: \S"):
        atomic_write_text(f"{parent}/out.json", "{}")


def test_a_failed_rename_is_an_output_error(tmp_path):
    target = tmp_path / "is-a-directory"
    (target / "child").mkdir(parents=True)
    with pytest.raises(OutputError, match=r"cannot write .*is-a-directory"):
        atomic_write_text(target, "x")
    assert sorted(os.listdir(tmp_path)) == ["is-a-directory"]


@pytest.mark.parametrize(
    "argv",
    [
        ["record", "export", "-i", "{record}", "-o", "/proc/nope/out.json", "--format", "json"],
        ["report", "heats", "-i", "{record}", "--heatmap", "/proc/nope/heats.png"],
        ["report", "wss", "-i", "{record}", "--plot", "/proc/nope/wss.png"],
    ],
    ids=["export", "heatmap", "wss-plot"],
)
def test_cli_outputs_that_cannot_be_written_are_one_line_errors(tmp_path, capsys, argv):
    record = tmp_path / "r.perf"
    record.write_text(perf_script(moving_hot(n=30)))
    status = cli.main([a.format(record=record) for a in argv])
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith("damon-eval: error: cannot write /proc/nope/")
    assert len(err.strip().splitlines()) == 1
