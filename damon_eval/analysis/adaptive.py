"""When a cell (workload x configuration) has been repeated enough: the rule of ``repeats: auto``.

A cell stops when its mean's 95 % CI half-width, relative to the mean, is at most
``target_rel_half_width`` (pyperf-style calibration), or when it reaches
``max_repeats``; it never stops before ``min_repeats``.  The decision uses
only the results so far (``runs.csv`` rows), so it can be re-run after every
round: the pipeline's ``repeats_round`` checkpoint does (docs/pipeline.md).  The
rule's settings (:class:`~damon_eval.config.repeats.AutoRepeats`) are the campaign's.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from damon_eval.analysis.runtable import ok_values
from damon_eval.analysis.stats import summarize
from damon_eval.config.repeats import AutoRepeats

STOP_PRECISE = "ci_narrow_enough"
STOP_LIMIT = "max_repeats_reached"
CONTINUE_MIN = "below_min_repeats"
CONTINUE_WIDE = "ci_too_wide"


@dataclass(frozen=True, slots=True)
class CellDecision:
    suite: str
    workload: str
    config: str
    repeats_done: int
    rel_half_width: float | None  # None: no CI yet (n < 2) or zero mean
    stop: bool
    reason: str
    repeats_run: int = 0  # repeats attempted, failed ones included

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def decide(runs: pd.DataFrame, rule: AutoRepeats) -> list[CellDecision]:
    """One decision per cell seen in ``runs`` (successful repeats of ``rule.metric``)."""
    values = ok_values(runs)
    values = values[values["metric"] == rule.metric]
    decisions = []
    for (suite, workload, config), group in runs.groupby(["suite", "workload", "config"]):
        samples = values[
            (values["suite"] == suite)
            & (values["workload"] == workload)
            & (values["config"] == config)
        ]["value"].tolist()
        done = len(samples)
        run = int(group["repeat"].max())
        relative = _relative_half_width(samples)
        # max_repeats bounds attempts too, so a cell whose runs keep failing ends.
        if (
            done >= rule.min_repeats
            and relative is not None
            and (relative <= rule.target_rel_half_width)
        ):
            stop, reason = True, STOP_PRECISE
        elif run >= rule.max_repeats:
            stop, reason = True, STOP_LIMIT
        elif done < rule.min_repeats:
            stop, reason = False, CONTINUE_MIN
        else:
            stop, reason = False, CONTINUE_WIDE
        decisions.append(CellDecision(suite, workload, config, done, relative, stop, reason, run))
    return decisions


def _relative_half_width(samples: list[float]) -> float | None:
    if len(samples) < 2:
        return None
    estimate = summarize(samples)
    ci = estimate.ci95
    if ci is None or estimate.value == 0:
        return None
    return (ci[1] - ci[0]) / 2 / abs(estimate.value) if math.isfinite(ci[1]) else None


def next_round(decisions: list[CellDecision]) -> list[tuple[str, str, str, int]]:
    """(suite, workload, config, repeat) of the next round: one more repeat per open cell."""
    return [(d.suite, d.workload, d.config, d.repeats_run + 1) for d in decisions if not d.stop]
