"""Kernel A/B tables: the arithmetic against hand computation, the headline, errors."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from scipy import stats as sps

from damon_eval.analysis import kernel_ab
from damon_eval.analysis.errors import RunTableError, UnknownConfigError
from damon_eval.errors import DamonEvalError

# (config, workload, kernel) -> runtimes of repeats 1..3
OBSERVATIONS = {
    ("orig", "a", "base"): [1.0, 2.0, 3.0],
    ("orig", "a", "patched"): [11.0, 12.0, 13.0],
    ("prcl", "a", "base"): [10.0, 12.0, 14.0],
    ("prcl", "a", "patched"): [13.0, 15.0, 17.0],
    ("prcl", "b", "base"): [100.0, 101.0, 102.0],
    ("prcl", "b", "patched"): [100.0, 101.0, 102.0],
}


def _runs(observations=OBSERVATIONS, failed=()) -> pd.DataFrame:
    rows = [
        {
            "suite": "synthetic", "workload": workload, "config": config, "repeat": i,
            "metric": "runtime", "value": value, "status": "ok", "kernel": kernel,
        }
        for (config, workload, kernel), values in observations.items()
        for i, value in enumerate(values, 1)
    ]  # fmt: skip
    rows += [
        {
            "suite": "synthetic", "workload": workload, "config": config, "repeat": 9,
            "metric": "", "value": math.nan, "status": "failed", "kernel": kernel,
        }
        for config, workload, kernel in failed
    ]  # fmt: skip
    return pd.DataFrame(rows)


def _t_p(t: float, df: float) -> float:
    return float(2 * sps.t.sf(abs(t), df))


def test_cells_match_hand_computation():
    comparison = kernel_ab.compare_kernels(_runs())
    assert list(comparison.tables) == [("orig", "runtime"), ("prcl", "runtime")]
    prcl = comparison.tables[("prcl", "runtime")]
    a = prcl.cell("synthetic/a", "patched")
    # means 12 and 15; both samples have s^2 = 4, n = 3
    assert a.estimate.value == 15.0 and prcl.cell("synthetic/a", "base").estimate.value == 12.0
    assert a.overhead_pct == pytest.approx(25.0)
    se = math.sqrt(4 / 3 + 4 / 3)
    assert a.test.t == pytest.approx(3 / se)
    assert a.test.df == pytest.approx((8 / 3) ** 2 / (2 * (4 / 3) ** 2 / 2))  # = 4
    assert a.test.p == pytest.approx(_t_p(3 / se, 4))
    assert a.test.p > 0.05 and not a.significant
    # delta method: r = 1.25, Var(r) = se_p^2/b^2 + r^2 se_b^2/b^2
    part_p, part_b = (4 / 3) / 144, 1.25**2 * (4 / 3) / 144
    df = (part_p + part_b) ** 2 / (part_p**2 / 2 + part_b**2 / 2)
    half = sps.t.ppf(0.975, df) * math.sqrt(part_p + part_b) * 100
    assert a.overhead_ci95 == pytest.approx((25 - half, 25 + half))
    # equal samples: no difference, p = 1
    b = prcl.cell("synthetic/b", "patched")
    assert b.overhead_pct == 0.0 and b.test.p == pytest.approx(1.0)


def test_total_row_matches_hand_computation():
    prcl = kernel_ab.compare_kernels(_runs()).tables[("prcl", "runtime")]
    base, patched = prcl.summary["base"], prcl.summary["patched"]
    assert (base.estimate.value, patched.estimate.value) == (113.0, 116.0)
    assert patched.overhead_pct == pytest.approx((116 / 113 - 1) * 100)
    # each total: se^2 = 4/3 + 1/3; Welch-Satterthwaite df = (5/3)^2 / (16/9/2 + 1/9/2)
    assert base.estimate.se == pytest.approx(math.sqrt(5 / 3))
    assert base.estimate.df == pytest.approx(50 / 17)
    t = 3 / math.sqrt(10 / 3)
    df = (10 / 3) ** 2 / (2 * (5 / 3) ** 2 / (50 / 17))
    assert patched.test.t == pytest.approx(t) and patched.test.df == pytest.approx(df)
    assert patched.test.p == pytest.approx(_t_p(t, df))


def test_seed_table_form():
    comparison = kernel_ab.compare_kernels(_runs(), configs=["prcl"])
    text = kernel_ab.render_text(comparison, annotate=False)
    assert text.splitlines()[2:] == [
        "# configuration prcl",
        "runtime     base    patched (overhead)",
        "synthetic/a 12.000  15.000  (25.00)",
        "synthetic/b 101.000 101.000 (0.00)",
        "total       113.000 116.000 (2.65)",
    ]


def test_headline_names_the_significant_changes():
    comparison = kernel_ab.compare_kernels(_runs())
    changes = comparison.changes()
    assert [(c.config, c.workload) for c in changes] == [
        ("orig", "synthetic/a"),
        ("orig", "total"),
    ]
    t = 10 / math.sqrt(2 / 3)
    assert changes[0].p == pytest.approx(_t_p(t, 4)) and changes[0].overhead_pct == 500.0
    assert comparison.nr_tested() == 5  # orig a, total; prcl a, b, total
    sentence = kernel_ab.headline(comparison)
    assert sentence.startswith(
        "patched against base: 2 of 5 comparisons differ significantly "
        "(Welch's t-test, p < 0.05): runtime of orig on synthetic/a +500.00 % ["
    )
    assert "runtime of orig in total +500.00 %" in sentence
    assert "prcl" not in sentence
    annotated = kernel_ab.render_text(comparison)
    assert "synthetic/a 2.000 12.000  (*500.00*)" in annotated
    assert "# *x*: differs from base by Welch's t-test, p < 0.05" in annotated


def test_headline_when_nothing_changed_or_nothing_can_be_tested():
    same = {k: v for k, v in OBSERVATIONS.items() if k[1] == "b"}
    assert kernel_ab.headline(kernel_ab.compare_kernels(_runs(same))) == (
        "patched against base: none of 2 comparisons differs significantly "
        "(Welch's t-test, p < 0.05)."
    )
    single = {k: v[:1] for k, v in same.items()}
    assert "no comparison could be tested" in kernel_ab.headline(
        kernel_ab.compare_kernels(_runs(single))
    )


def test_failed_runs_are_counted_not_averaged():
    runs = _runs(failed=[("prcl", "a", "patched")])
    prcl = kernel_ab.compare_kernels(runs).tables[("prcl", "runtime")]
    cell = prcl.cell("synthetic/a", "patched")
    assert cell.nr_failed == 1 and cell.estimate.n == 3 and cell.estimate.value == 15.0
    assert "# failed runs (not in any mean): synthetic/a patched x1" in kernel_ab.render_text(
        kernel_ab.compare_kernels(runs, configs=["prcl"])
    )


def test_kernel_names_can_be_chosen():
    renamed = {(c, w, {"base": "v6.12", "patched": "v6.12+fix"}[k]): v
               for (c, w, k), v in OBSERVATIONS.items()}  # fmt: skip
    comparison = kernel_ab.compare_kernels(_runs(renamed), base="v6.12", patched="v6.12+fix")
    assert comparison.tables[("orig", "runtime")].configs == ("v6.12", "v6.12+fix")


def test_errors_name_what_is_valid():
    with pytest.raises(RunTableError, match=r"no kernel column.*kernels: \{base"):
        kernel_ab.compare_kernels(_runs().drop(columns="kernel"))
    with pytest.raises(UnknownConfigError, match=r"patched kernel 'new' .* kernels there: base"):
        kernel_ab.compare_kernels(_runs(), patched="new")
    with pytest.raises(UnknownConfigError, match=r"unknown configuration 'thp'.*orig, prcl"):
        kernel_ab.compare_kernels(_runs(), configs=["thp"])
    with pytest.raises(DamonEvalError, match=r"unknown metric 'speed'"):
        kernel_ab.compare_kernels(_runs(), metrics=["speed"])
    with pytest.raises(UnknownConfigError, match=r"both 'base'"):
        kernel_ab.compare_kernels(_runs(), patched="base")
