"""benchmarks/noise_steps.py's table: the spread test against the first variant."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from scipy import stats

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def noise_steps():
    sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location(
        "noise_steps", REPO_ROOT / "benchmarks" / "noise_steps.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _runs(runtimes, status="ok"):
    return [
        {"config": "orig", "status": status, "runtime": t, "rss_avg": 1000.0 + t,
         "load_before": 0.5, "noise": None}
        for t in runtimes
    ]  # fmt: skip


def test_table_tests_each_variants_spread_against_the_first(noise_steps):
    quiet = [10.0, 10.1, 9.9, 10.05, 9.95, 10.0]
    noisy = [7.0, 13.0, 8.0, 12.5, 9.0, 11.0]
    lines = noise_steps.table({"cold-off": _runs(quiet), "cold-on": _runs(noisy)})
    assert "runtime spread vs cold-off: Levene p / Bartlett p" in lines[0]
    assert lines[1].count("|") == lines[0].count("|")
    reference_row, noisy_row = lines[2].split(" | "), lines[3].split(" | ")
    assert reference_row[5] == "reference"
    levene = stats.levene(noisy, quiet, center="median").pvalue
    bartlett = stats.bartlett(noisy, quiet).pvalue
    assert noisy_row[5] == f"{levene:.2f} / {bartlett:.2f}"
    assert bartlett < 0.05  # the test can tell these two apart


def test_too_few_runs_give_no_p_value(noise_steps):
    lines = noise_steps.table({"baseline": _runs([1.0, 1.1, 1.2]), "pin-only": _runs([1.0, 2.0])})
    assert lines[3].split(" | ")[5] == "too few runs"
    failed = noise_steps.table(
        {"baseline": _runs([1.0, 1.1, 1.2]), "drop": _runs([1.0] * 4, "failed")}
    )
    assert failed[3].split(" | ")[1] == "0/4"
