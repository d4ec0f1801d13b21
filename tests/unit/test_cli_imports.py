"""Commands load only what they use: no heavy library behind `--help` or `report wss`.

Each case runs the command in a fresh interpreter and lists ``sys.modules`` at
the end (timings belong to ``benchmarks/record_bench.py``, not here).  A module
that imports pandas, scipy, matplotlib... at its top, on one of these paths, or a
command table that imports every command to build the parser, fails here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import record_samples

import damon_eval
from damon_eval import cli

# Imported only by the commands (or options) that need them.
HEAVY = (
    "pandas",
    "scipy",
    "matplotlib",
    "pyarrow",
    "jinja2",
    "jsonschema",
    "yaml",
    "fabric",
    "paramiko",
    "invoke",
    "rich",
    "snakemake",
)

# Runs cli.main(argv) and writes its status and the loaded modules to a file.
PROBE = """
import contextlib, io, json, sys
from damon_eval import cli
out = io.StringIO()
with contextlib.redirect_stdout(out):
    try:
        status = cli.main(sys.argv[2:])
    except SystemExit as exc:
        status = exc.code
with open(sys.argv[1], "w") as f:
    json.dump({"status": status, "stdout": out.getvalue(), "modules": sorted(sys.modules)}, f)
"""


def _run_probe(tmp_path: Path, argv: list[str]) -> tuple[str, set[str]]:
    report = tmp_path / "probe.json"
    # the damon_eval under test, whatever the current directory
    tree = str(Path(damon_eval.__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (tree, os.environ.get("PYTHONPATH")) if p)
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(report), *argv],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    probe = json.loads(report.read_text())
    assert probe["status"] in (0, None), (argv, probe["status"], proc.stderr)
    return probe["stdout"], set(probe["modules"])


def _loaded(modules: set[str], names) -> list[str]:
    return [name for name in names if name in modules]


@pytest.mark.parametrize("argv", [["--help"], ["--version"]], ids=" ".join)
def test_help_and_version_load_no_command_and_no_heavy_library(tmp_path, argv):
    out, modules = _run_probe(tmp_path, argv)
    assert "report" in out or "damon-eval" in out  # it did print the help or version
    assert _loaded(modules, HEAVY) == []
    assert "numpy" not in modules
    command_modules = [m for m in modules if m.startswith("damon_eval.commands.")]
    assert command_modules == []


# What no command's own help may load.  (PyYAML and jsonschema still come with
# `run -h`, `campaign -h` and `workloads -h`, through damon_eval.schema: ~0.1 s.)
ANALYSIS_LIBRARIES = ("pandas", "scipy", "matplotlib", "pyarrow", "jinja2")


@pytest.mark.parametrize("command", [c.name for c in cli.COMMANDS])
def test_command_help_loads_no_analysis_library(tmp_path, command):
    out, modules = _run_probe(tmp_path, [command, "-h"])
    assert out.startswith(f"usage: damon-eval {command}")
    assert _loaded(modules, ANALYSIS_LIBRARIES) == []


@pytest.fixture
def perf_script_record(tmp_path) -> Path:
    path = tmp_path / "record.perf_script"
    path.write_text(record_samples.perf_script(record_samples.moving_hot(30)))
    return path


@pytest.mark.parametrize(
    "report",
    [["wss"], ["wss", "--sortby", "time"], ["heats"], ["heats", "--guide"], ["raw"]],
    ids=" ".join,
)
def test_text_reports_load_numpy_only(tmp_path, perf_script_record, report):
    out, modules = _run_probe(tmp_path, ["report", *report, "-i", str(perf_script_record)])
    assert out.strip()  # the report was printed
    assert "damon_eval.records.store" in modules  # the record was read on this path
    assert _loaded(modules, HEAVY) == []
    # the DAMON controller is not needed to read a record
    assert "damon_eval.damon.controller" not in modules
    # np.unique imports numpy.ma (30-60 ms); records.model.target_indices avoids it
    assert "numpy.ma" not in modules


def test_only_the_chosen_command_is_imported(tmp_path):
    _, modules = _run_probe(tmp_path, ["scheme", "show", "4K max 0 5 7s max pageout"])
    loaded = {m for m in modules if m.startswith("damon_eval.commands.")}
    assert loaded == {"damon_eval.commands.scheme"}
    assert _loaded(modules, HEAVY) == []
