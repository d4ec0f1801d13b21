"""Statistics of table cells against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from damon_eval.analysis.stats import (
    Estimate,
    overhead_ci95,
    overhead_pct,
    share_ci95,
    sum_estimates,
    summarize,
    welch_test,
    welch_test_estimates,
)

T_975_DF2 = 4.302652729911275  # Student t quantile, 0.975, 2 degrees of freedom


def test_summary_of_three_values():
    e = summarize([10.0, 12.0, 14.0])
    assert e.n == 3
    assert e.value == 12.0
    # sample stdev: sqrt(((-2)^2 + 0 + 2^2) / (3 - 1)) = 2; statof.py's population one is 1.633
    assert e.stdev == pytest.approx(2.0)
    assert e.se == pytest.approx(2.0 / math.sqrt(3))
    low, high = e.ci95
    assert low == pytest.approx(12 - T_975_DF2 * 2 / math.sqrt(3))
    assert high == pytest.approx(12 + T_975_DF2 * 2 / math.sqrt(3))
    assert e.cv_pct == pytest.approx(100 * 2 / 12)
    assert e.cv_warning


def test_low_cv_has_no_warning():
    e = summarize([100.0, 101.0, 99.0])
    assert e.cv_pct == pytest.approx(1.0)
    assert not e.cv_warning


def test_single_value_has_no_spread():
    e = summarize([5.0])
    assert (e.stdev, e.se, e.ci95, e.cv_pct) == (None, None, None, None)
    result = welch_test([5.0], [4.0, 4.5])
    assert result.p is None and result.significant is None
    assert result.note == "n=1: no test"


def test_zero_variance():
    e = summarize([3.0, 3.0, 3.0])
    assert e.stdev == 0.0 and e.ci95 == (3.0, 3.0) and e.cv_pct == 0.0
    same = welch_test([3.0, 3.0], [3.0, 3.0])
    assert same.p == 1.0 and not same.significant
    different = welch_test([3.0, 3.0], [0.0, 0.0])
    assert different.p == 0.0 and different.significant
    assert different.note == "zero variance"
    # pswpout of orig: all zero mean -> no CV, no overhead
    assert summarize([0.0, 0.0]).cv_pct is None
    assert overhead_pct(10.0, 0.0) is None


def test_welch_by_hand():
    # means 12 and 22, both variances 4, n = 3: t = -10 / sqrt(8/3), df = 4
    result = welch_test([10.0, 12.0, 14.0], [20.0, 22.0, 24.0])
    t = -10 / math.sqrt(8 / 3)
    assert result.t == pytest.approx(t)
    assert result.df == pytest.approx(4.0)
    assert result.p == pytest.approx(2 * sps.t.sf(abs(t), 4))
    assert result.p == pytest.approx(0.0036, abs=1e-4)
    assert result.significant


def test_not_significant():
    result = welch_test([10.0, 12.0, 14.0], [10.5, 12.5, 14.5])
    assert result.p > 0.5 and result.significant is False


def test_summary_welch_equals_scipy_for_one_cell():
    a = [1.0, 2.5, 3.1, 2.2, 2.9]
    b = [2.0, 3.5, 4.8, 3.9]
    want = sps.ttest_ind(a, b, equal_var=False)
    got = welch_test_estimates(summarize(a), summarize(b))
    assert got.t == pytest.approx(want.statistic)
    assert got.df == pytest.approx(want.df)
    assert got.p == pytest.approx(want.pvalue)


def test_sum_of_estimates():
    parts = [summarize([1.0, 2.0, 3.0]), summarize([10.0, 14.0])]
    total = sum_estimates(parts)
    assert total.value == pytest.approx(2.0 + 12.0)
    var_a, var_b = 1.0 / 3, 8.0 / 2  # s^2/n: 1/3 and 8/2
    assert total.se == pytest.approx(math.sqrt(var_a + var_b))
    assert total.df == pytest.approx((var_a + var_b) ** 2 / (var_a**2 / 2 + var_b**2 / 1))
    assert sum_estimates([parts[0], summarize([4.0])]).se is None
    assert sum_estimates(parts, value=99.0).value == 99.0


def test_overhead_ci_by_delta_method():
    value = Estimate(110.0, 5, None, 2.0, 4.0)
    base = Estimate(100.0, 5, None, 1.0, 4.0)
    low, high = overhead_ci95(value, base)
    a, b = 4.0 / 100**2, 1.1**2 * 1.0 / 100**2
    df = (a + b) ** 2 / (a**2 / 4 + b**2 / 4)
    half = sps.t.ppf(0.975, df) * math.sqrt(a + b) * 100
    assert (low, high) == (pytest.approx(10 - half), pytest.approx(10 + half))
    assert overhead_ci95(Estimate(1.0, 1, None, None, None), base) is None


def test_share_ci_reduces_to_the_parts_t_interval_without_other_spread():
    # whole and baseline exact: the share is (part - 100) / 20, its CI the part's, scaled
    part = Estimate(110.0, 3, None, 2.0, 2.0)
    exact = [Estimate(v, 3, None, 0.0, 2.0) for v in (120.0, 100.0)]
    low, high = share_ci95(part, *exact)
    half = T_975_DF2 * 2.0 / 20 * 100
    assert (low, high) == (pytest.approx(50 - half), pytest.approx(50 + half))


def test_share_ci_variance_matches_numerical_derivatives():
    part, whole, base = (Estimate(v, 4, None, se, 3.0) for v, se in ((90, 1.5), (80, 2), (100, 1)))
    low, high = share_ci95(part, whole, base)

    def share(p, w, b):
        return (p - b) / (w - b) * 100

    h = 1e-6
    gradient = [
        (share(*(x + h * (i == j) for j, x in enumerate((90, 80, 100)))) - share(90, 80, 100)) / h
        for i in range(3)
    ]
    variance = sum((g * se) ** 2 for g, se in zip(gradient, (1.5, 2, 1), strict=True))
    terms = [(g * se) ** 2 for g, se in zip(gradient, (1.5, 2, 1), strict=True)]
    df = variance**2 / sum(t**2 / 3.0 for t in terms)
    half = sps.t.ppf(0.975, df) * math.sqrt(variance)
    assert (low + high) / 2 == pytest.approx(50.0)
    assert (high - low) / 2 == pytest.approx(half, rel=1e-4)


def test_share_ci_covers_the_true_share_about_95_percent_of_the_time():
    rng = np.random.default_rng(11)
    true_share, covered, trials = 50.0, 0, 2000
    for _ in range(trials):
        groups = [summarize(rng.normal(mean, 2.0, 5)) for mean in (90.0, 80.0, 100.0)]
        low, high = share_ci95(*groups)
        covered += low <= true_share <= high
    assert 0.93 <= covered / trials <= 0.975


def test_share_ci_needs_spread_and_a_nonzero_whole():
    base = Estimate(100.0, 3, None, 1.0, 2.0)
    assert (
        share_ci95(Estimate(90.0, 1, None, None, None), Estimate(80.0, 3, None, 1.0, 2.0), base)
        is None
    )
    assert share_ci95(Estimate(90.0, 3, None, 1.0, 2.0), base, base) is None
    zero = Estimate(90.0, 3, None, 0.0, 2.0)
    assert share_ci95(
        zero, Estimate(80.0, 3, None, 0.0, 2.0), Estimate(100.0, 3, None, 0.0, 2.0)
    ) == (50.0, 50.0)
