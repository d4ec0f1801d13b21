"""The rule of a campaign's ``repeats: auto``: when a cell has been repeated enough.

Only the rule's settings live here, with the campaign that names them; deciding
on results (``runs.csv``) is :mod:`damon_eval.analysis.adaptive`'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from damon_eval.errors import ConfigError


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
