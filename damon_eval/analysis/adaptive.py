"""When a cell (workload x configuration) has been repeated enough: the rule of ``repeats: auto``.

A cell stops when its mean's 95 % CI half-width, relative to the mean, is at most
``target_rel_half_width`` (pyperf-style calibration), or when it reaches
``max_repeats``; it never stops before ``min_repeats``.  The decision uses
only the results so far (``runs.csv`` rows), so it can be re-run after every
round: the pipeline's ``repeats_round`` checkpoint does (docs/pipeline.md).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from damon_eval.analysis.runtable import ok_values
from damon_eval.analysis.stats import summarize
from damon_eval.errors import ConfigError

STOP_PRECISE = "ci_narrow_enough"
STOP_LIMIT = "max_repeats_reached"
CONTINUE_MIN = "below_min_repeats"
CONTINUE_WIDE = "ci_too_wide"


@dataclass(frozen=True, slots=True)
class AutoRepeats:
    min_repeats: int = 3
    max_repeats: int = 10
    target_rel_half_width: float = 0.02
    metric: str = "runtime"

    def __post_init__(self):
        if not 2 <= self.min_repeats <= self.max_repeats <= 99:
            raise ConfigError(
                f"auto_repeats: need 2 <= min_repeats ({self.min_repeats}) <= max_repeats "
                f"({self.max_repeats}) <= 99"
            )
        if not 0 < self.target_rel_half_width < 1:
            raise ConfigError(
                f"auto_repeats: target_rel_half_width {self.target_rel_half_width!r} must be "
                "between 0 and 1 (e.g. 0.02 for 2 %)"
            )


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


def auto_repeats_from_settings(
    settings: Mapping[str, Any], source: str | Path
) -> AutoRepeats | None:
    """The rule of a validated campaign with ``repeats: auto``; None for fixed repeats."""
    if settings.get("repeats") != "auto":
        return None
    auto = settings["auto_repeats"]
    from damon_eval.metrics import METRICS

    if auto["metric"] not in METRICS:
        raise ConfigError(
            f"{source}: auto_repeats.metric: unknown metric {auto['metric']!r}; "
            f"valid: {', '.join(METRICS)}"
        )
    try:
        return AutoRepeats(
            auto["min_repeats"], auto["max_repeats"], auto["target_ci"], auto["metric"]
        )
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def next_round(decisions: list[CellDecision]) -> list[tuple[str, str, str, int]]:
    """(suite, workload, config, repeat) of the next round: one more repeat per open cell."""
    return [(d.suite, d.workload, d.config, d.repeats_run + 1) for d in decisions if not d.stop]
