"""Choices and argument types of the analysis commands.

Importable without pandas, scipy or matplotlib, so that ``damon-eval analyze -h``
and ``damon-eval table -h`` need none of them.
"""

from __future__ import annotations

from damon_eval.analysis.errors import UnknownMetricError
from damon_eval.metrics import METRICS

#: Total rows: exact sums, or the seed's awk-rounded running sums.
ARITHMETICS = ("exact", "seed")
#: Renderings of one metric's table.
TABLE_FORMATS = ("text", "csv", "html")


def comma_list(text: str) -> list[str]:
    """``a,b, c`` -> ``["a", "b", "c"]`` (command-line lists)."""
    return [part.strip() for part in text.split(",") if part.strip()]


def check_metric(name: str) -> None:
    if name not in METRICS:
        raise UnknownMetricError(f"unknown metric {name!r}; valid: {', '.join(METRICS)}")
