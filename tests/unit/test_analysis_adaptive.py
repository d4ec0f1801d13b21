"""The stopping rule of ``repeats: auto`` on fixture results."""

from __future__ import annotations

import pandas as pd
import pytest

from damon_eval.analysis.adaptive import (
    CONTINUE_MIN,
    CONTINUE_WIDE,
    STOP_LIMIT,
    STOP_PRECISE,
    decide,
    next_round,
)
from damon_eval.config.repeats import AutoRepeats, auto_repeats_from_settings
from damon_eval.errors import ConfigError


def runs(cells: dict[str, list[float]]) -> pd.DataFrame:
    rows = [
        {
            "suite": "s",
            "workload": w,
            "config": "orig",
            "repeat": i,
            "metric": "runtime",
            "value": v,
            "status": "ok",
        }
        for w, values in cells.items()
        for i, v in enumerate(values, start=1)
    ]
    return pd.DataFrame(rows)


def by_workload(frame, rule):
    return {d.workload: d for d in decide(frame, rule)}


RULE = AutoRepeats(min_repeats=3, max_repeats=6, target_rel_half_width=0.02)


def test_quiet_cell_stops_at_min_repeats_noisy_one_continues():
    decisions = by_workload(
        runs({"quiet": [100.0, 100.2, 99.9], "noisy": [100.0, 120.0, 85.0]}), RULE
    )
    assert decisions["quiet"].stop and decisions["quiet"].reason == STOP_PRECISE
    assert decisions["quiet"].repeats_done == 3
    assert not decisions["noisy"].stop and decisions["noisy"].reason == CONTINUE_WIDE
    assert decisions["noisy"].rel_half_width > 0.02


def test_noisy_cell_gets_repeats_until_the_limit():
    noisy = [100.0, 120.0, 85.0, 110.0, 95.0]
    decisions = by_workload(runs({"noisy": noisy}), RULE)
    assert not decisions["noisy"].stop  # 5 < max 6
    decisions = by_workload(runs({"noisy": [*noisy, 105.0]}), RULE)
    assert decisions["noisy"].stop and decisions["noisy"].reason == STOP_LIMIT


def test_below_min_repeats_never_stops():
    decisions = by_workload(runs({"quiet": [100.0, 100.0]}), RULE)
    assert not decisions["quiet"].stop and decisions["quiet"].reason == CONTINUE_MIN


def test_relative_half_width_by_hand():
    from scipy import stats as sps

    values = [100.0, 102.0, 98.0]  # mean 100, s = 2
    (decision,) = decide(runs({"w": values}), RULE)
    want = sps.t.ppf(0.975, 2) * 2 / 3**0.5 / 100
    assert decision.rel_half_width == pytest.approx(want)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_repeats": 1}, "need 2 <= min_repeats (1)"),
        ({"min_repeats": 5, "max_repeats": 4}, "<= max_repeats (4)"),
        ({"target_rel_half_width": 2.0}, "target_rel_half_width 2.0 must be between 0 and 1"),
    ],
)
def test_bad_rule_is_a_clear_error(kwargs, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        AutoRepeats(**kwargs)


def test_a_cell_whose_runs_keep_failing_stops_at_max_repeats():
    frame = runs({"flaky": [100.0]})
    failed = pd.DataFrame(
        [
            {
                "suite": "s",
                "workload": "flaky",
                "config": "orig",
                "repeat": r,
                "metric": "",
                "value": float("nan"),
                "status": "failed",
            }
            for r in range(2, 7)
        ]
    )
    (decision,) = decide(pd.concat([frame, failed]), RULE)
    assert decision.repeats_done == 1 and decision.repeats_run == 6
    assert decision.stop and decision.reason == STOP_LIMIT
    (decision,) = decide(pd.concat([frame, failed[:2]]), RULE)  # 3 run, 1 ok
    assert not decision.stop and decision.reason == CONTINUE_MIN


def test_next_round_is_one_more_repeat_of_each_open_cell():
    decisions = decide(
        runs({"quiet": [100.0, 100.2, 99.9], "noisy": [100.0, 120.0, 85.0, 99.0]}), RULE
    )
    assert next_round(decisions) == [("s", "noisy", "orig", 5)]


def test_rule_from_campaign_settings():
    settings = {
        "repeats": "auto",
        "auto_repeats": {
            "min_repeats": 4,
            "max_repeats": 8,
            "target_ci": 0.05,
            "metric": "rss.avg",
        },
    }
    assert auto_repeats_from_settings(settings, "c.yaml") == AutoRepeats(4, 8, 0.05, "rss.avg")
    assert auto_repeats_from_settings({**settings, "repeats": 5}, "c.yaml") is None
