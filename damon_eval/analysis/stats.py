"""Statistics of table cells: mean, spread, confidence intervals, Welch's t-test.

Definitions (docs/statistics.md explains the choices):

* stdev is the SAMPLE standard deviation (ddof=1).  damon-tests' ``statof.py``
  prints the population one (ddof=0), which is smaller by sqrt((n-1)/n).
* The 95 % CI of a mean is Student's t: mean +- t(0.975, n-1) * s / sqrt(n).
* CV = s / |mean| * 100; a cell is flagged above :data:`CV_WARN_PCT`.
* A difference against the baseline is significant when Welch's t-test
  (``scipy.stats.ttest_ind(equal_var=False)``) gives p < :data:`ALPHA`.
* A total (a sum of per-workload means) has the standard error
  sqrt(sum s_w^2/n_w) and Welch-Satterthwaite degrees of freedom; for one
  workload this is exactly the per-cell case.
* The overhead (ratio - 1) * 100 gets an approximate CI by the delta method, and
  so does the share of one overhead in another (:func:`share_ci95`).

With n < 2 there is no spread, CI or test; with zero variance in both groups
the test is decided by the means alone (equal: p = 1, different: p = 0).
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

ALPHA = 0.05
CONFIDENCE = 0.95
CV_WARN_PCT = 5.0


@functools.lru_cache(maxsize=4096)  # tables ask for the same df over and over
def _t_quantile(df: float) -> float:
    return float(sps.t.ppf(0.5 + CONFIDENCE / 2, df))


@dataclass(frozen=True, slots=True)
class Estimate:
    """A mean (or a sum of means) with its uncertainty.

    ``se`` is the standard error and ``df`` its degrees of freedom; both are
    None when there is no spread to estimate (a cell with n < 2, or a total
    with such a cell).
    """

    value: float
    n: int
    stdev: float | None
    se: float | None
    df: float | None

    @property
    def ci95(self) -> tuple[float, float] | None:
        if self.se is None:
            return None
        if self.se == 0:
            return (self.value, self.value)
        half = _t_quantile(self.df) * self.se
        return (self.value - half, self.value + half)

    @property
    def cv_pct(self) -> float | None:
        if self.stdev is None or self.value == 0:
            return None
        return self.stdev / abs(self.value) * 100

    @property
    def cv_warning(self) -> bool:
        cv = self.cv_pct
        return cv is not None and cv > CV_WARN_PCT


def summarize(values: Sequence[float]) -> Estimate:
    """Mean of repeated observations with sample stdev, SE and n-1 df."""
    data = np.asarray(values, dtype=float)
    n = int(data.size)
    if n == 0:
        raise ValueError("summarize() needs at least one value")
    mean = float(math.fsum(data) / n)
    if n < 2:
        return Estimate(mean, n, None, None, None)
    stdev = float(np.std(data, ddof=1))
    return Estimate(mean, n, stdev, stdev / math.sqrt(n), float(n - 1))


def sum_estimates(parts: Sequence[Estimate], value: float | None = None) -> Estimate:
    """The sum of independent estimates, Welch-Satterthwaite df.

    ``value`` overrides the plain sum (the seed's arithmetic rounds it).
    """
    total = math.fsum(p.value for p in parts) if value is None else value
    n = sum(p.n for p in parts)
    if any(p.se is None for p in parts) or not parts:
        return Estimate(total, n, None, None, None)
    variance = math.fsum(p.se**2 for p in parts)
    if variance == 0:
        return Estimate(total, n, None, 0.0, None)
    denominator = math.fsum(p.se**4 / p.df for p in parts if p.se)
    return Estimate(total, n, None, math.sqrt(variance), variance**2 / denominator)


@dataclass(frozen=True, slots=True)
class WelchResult:
    """Welch's t-test of one estimate against the baseline."""

    t: float | None
    df: float | None
    p: float | None
    note: str = ""

    @property
    def significant(self) -> bool | None:
        return None if self.p is None else self.p < ALPHA


def welch_test(values: Sequence[float], baseline: Sequence[float]) -> WelchResult:
    """Welch's t-test of two samples (scipy), with the degenerate cases decided."""
    a = np.asarray(values, dtype=float)
    b = np.asarray(baseline, dtype=float)
    if a.size < 2 or b.size < 2:
        return WelchResult(None, None, None, f"n={min(a.size, b.size)}: no test")
    if np.var(a) == 0 and np.var(b) == 0:
        return _zero_variance(float(a.mean()), float(b.mean()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = sps.ttest_ind(a, b, equal_var=False)
    return WelchResult(float(result.statistic), float(result.df), float(result.pvalue))


def welch_test_estimates(value: Estimate, baseline: Estimate) -> WelchResult:
    """Welch's t-test from summaries (used for totals; equals scipy for one cell)."""
    if value.se is None or baseline.se is None:
        return WelchResult(None, None, None, f"n={min(value.n, baseline.n)}: no test")
    variance = value.se**2 + baseline.se**2
    if variance == 0:
        return _zero_variance(value.value, baseline.value)
    denominator = math.fsum(e.se**4 / e.df for e in (value, baseline) if e.se and e.df is not None)
    df = variance**2 / denominator
    t = (value.value - baseline.value) / math.sqrt(variance)
    p = float(2 * sps.t.sf(abs(t), df))
    return WelchResult(t, df, p)


def _zero_variance(mean: float, baseline_mean: float) -> WelchResult:
    if mean == baseline_mean:
        return WelchResult(0.0, None, 1.0, "zero variance, equal means")
    return WelchResult(math.copysign(math.inf, mean - baseline_mean), None, 0.0, "zero variance")


def overhead_pct(value: float, baseline: float) -> float | None:
    """(value / baseline - 1) * 100, the seed's overhead; None for a zero baseline."""
    if baseline == 0:
        return None
    return (value / baseline - 1) * 100


def overhead_ci95(value: Estimate, baseline: Estimate) -> tuple[float, float] | None:
    """Approximate 95 % CI of the overhead, delta method on the ratio of means.

    Var(r) ~ (se_v^2 + r^2 se_b^2) / b^2 with r = v / b; df by Welch-Satterthwaite.
    """
    if value.se is None or baseline.se is None or baseline.value == 0:
        return None
    ratio = value.value / baseline.value
    part_value = value.se**2 / baseline.value**2
    part_baseline = ratio**2 * baseline.se**2 / baseline.value**2
    variance = part_value + part_baseline
    centre = (ratio - 1) * 100
    if variance == 0:
        return (centre, centre)
    denominator = math.fsum(
        part**2 / e.df for part, e in ((part_value, value), (part_baseline, baseline)) if part
    )
    half = _t_quantile(variance**2 / denominator) * math.sqrt(variance) * 100
    return (centre - half, centre + half)


def share_ci95(part: Estimate, whole: Estimate, baseline: Estimate) -> tuple[float, float] | None:
    """Approximate 95 % CI of ``100 * (part - baseline) / (whole - baseline)``, delta method.

    The share of one configuration's overhead in another's (ethp's of THP's): the
    ratio of the two overheads, in which the baseline cancels out of the percentages
    but not out of the variance.  With q the share and D = whole - baseline,
    Var(q) ~ (se_p^2 + q^2 se_w^2 + (1 - q)^2 se_b^2) / D^2, three independent
    groups; df by Welch-Satterthwaite over the three terms.  None without spread or
    for D = 0.
    """
    if part.se is None or whole.se is None or baseline.se is None:
        return None
    difference = whole.value - baseline.value
    if difference == 0:
        return None
    share = (part.value - baseline.value) / difference
    terms = [
        (part.se**2 / difference**2, part),
        (share**2 * whole.se**2 / difference**2, whole),
        ((1 - share) ** 2 * baseline.se**2 / difference**2, baseline),
    ]
    variance = math.fsum(t for t, _ in terms)
    centre = share * 100
    if variance == 0:
        return (centre, centre)
    denominator = math.fsum(t**2 / e.df for t, e in terms if t)
    half = _t_quantile(variance**2 / denominator) * math.sqrt(variance) * 100
    return (centre - half, centre + half)
