"""The failure box: how many runs failed, by kind, and which table cells have no ok run.

A campaign whose runs failed must be impossible to miss: the headlines, the report's
front page and ``damon-eval campaign status`` open with this summary, and the
pipeline fails when no run succeeded (:func:`check_some_run_succeeded`).
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import pandas as pd

from damon_eval.errors import DamonEvalError


class NoSuccessfulRun(DamonEvalError):
    """Every run of a campaign failed: there is no number to report."""


@dataclass(frozen=True, slots=True)
class FailureSummary:
    campaign: str
    nr_runs: int
    nr_ok: int
    by_kind: tuple[tuple[str, int], ...]  # (failure kind, runs), most first
    empty_cells: tuple[tuple[str, tuple[str, ...]], ...]  # (workload id, configs with no ok run)

    @property
    def nr_failed(self) -> int:
        return self.nr_runs - self.nr_ok

    @property
    def any(self) -> bool:
        """Whether there is anything to warn about."""
        return self.nr_failed > 0 or bool(self.empty_cells)

    def headline(self) -> str:
        """One sentence: how many runs failed and of which kinds."""
        if self.nr_runs == 0:
            return f"campaign {self.campaign}: no run results"
        if not self.any:
            return f"campaign {self.campaign}: all {self.nr_runs} runs succeeded"
        kinds = ", ".join(f"{n} {kind}" for kind, n in self.by_kind)
        none = " NO RUN SUCCEEDED:" if self.nr_ok == 0 else ""
        return (
            f"campaign {self.campaign}:{none} {self.nr_failed} of {self.nr_runs} runs failed"
            f" ({kinds})"
        )

    def cell_lines(self) -> list[str]:
        return [f"{workload}: {', '.join(configs)}" for workload, configs in self.empty_cells]

    def to_text(self) -> str:
        if not self.any:
            return self.headline() + "\n"
        lines = [f"!! {self.headline()}"]
        if self.empty_cells:
            lines.append(f"!! {self.nr_empty_cells} table cell(s) have no successful run:")
            lines += [f"!!   {line}" for line in self.cell_lines()]
        lines.append("!! (damon-eval campaign status lists each failed run with its reason)")
        return "\n".join(lines) + "\n"

    @property
    def nr_empty_cells(self) -> int:
        return sum(len(configs) for _, configs in self.empty_cells)

    def to_html(self) -> str:
        if not self.any:
            return ""
        cells = "".join(f"<li>{html.escape(line)}</li>" for line in self.cell_lines())
        cells_part = (
            f"<p>{self.nr_empty_cells} table cell(s) have no successful run "
            f"(no value in any table):</p><ul>{cells}</ul>"
            if self.empty_cells
            else ""
        )
        return (
            '<div class="failure-box" role="alert" style="border:3px solid #b00020;'
            'background:#fdecea;padding:0.5em 1em;margin:0 0 1em 0">'
            f"<p><strong>{html.escape(self.headline())}</strong></p>{cells_part}"
            "<p>Each failed run with its reason: <code>damon-eval campaign status</code>; "
            "the provenance page lists them too.</p></div>\n"
        )

    def to_rst(self) -> str:
        """An rST ``error`` admonition (the report's front page), or "" if nothing failed."""
        if not self.any:
            return ""
        lines = [".. error::", "", f"   **{_rst_escape(self.headline())}**", ""]
        if self.empty_cells:
            lines += [f"   {self.nr_empty_cells} table cell(s) have no successful run:", ""]
            lines += [f"   - {_rst_escape(line)}" for line in self.cell_lines()]
            lines.append("")
        lines += ["   Each failed run with its reason: ``damon-eval campaign status``.", ""]
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict:
        return {
            "campaign": self.campaign,
            "nr_runs": self.nr_runs,
            "nr_ok": self.nr_ok,
            "nr_failed": self.nr_failed,
            "failed_by_kind": dict(self.by_kind),
            "cells_without_ok_run": {w: list(c) for w, c in self.empty_cells},
            "headline": self.headline(),
        }


def _rst_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("*", "\\*").replace("`", "\\`")


def summarize_failures(runs: pd.DataFrame, campaign: str, configs=None) -> FailureSummary:
    """From a run table (runs.csv): one entry per run, failed ones by ``failure_kind``;
    a cell is (workload, configuration), in ``configs`` order when given."""
    # A kernels: campaign runs each (workload, config, repeat) once per kernel.
    kernels = (
        sorted(set(runs["kernel"].fillna("").astype(str)) - {""})
        if "kernel" in runs.columns
        else []
    )
    per_kernel = len(kernels) > 1
    runs = runs.assign(
        cell=runs["suite"] + "/" + runs["workload"]
        + ((" (kernel " + runs["kernel"].astype(str) + ")") if per_kernel else "")
    )  # fmt: skip
    per_run = runs.drop_duplicates(["cell", "config", "repeat"])
    failed = per_run[per_run["status"] != "ok"]
    kinds = failed["failure_kind"].replace("", "unknown").value_counts()
    by_kind = tuple(sorted(((str(k), int(n)) for k, n in kinds.items()), key=lambda x: -x[1]))
    order = {c: i for i, c in enumerate(configs or ())}
    ok_cells = set(
        per_run[per_run["status"] == "ok"]
        .loc[:, ["cell", "config"]]
        .itertuples(index=False, name=None)
    )
    empty: dict[str, list[str]] = {}
    cells = per_run.loc[:, ["cell", "config"]].drop_duplicates()
    for cell, config in sorted(cells.itertuples(index=False, name=None)):
        if (cell, config) not in ok_cells:
            empty.setdefault(cell, []).append(config)
    empty_cells = tuple(
        (w, tuple(sorted(c, key=lambda name: (order.get(name, len(order)), name))))
        for w, c in empty.items()
    )
    return FailureSummary(
        campaign=campaign,
        nr_runs=len(per_run),
        nr_ok=int((per_run["status"] == "ok").sum()),
        by_kind=by_kind,
        empty_cells=empty_cells,
    )


def check_some_run_succeeded(summary: FailureSummary) -> None:
    """Raise :class:`NoSuccessfulRun` when the campaign has runs and none succeeded."""
    if summary.nr_runs and summary.nr_ok == 0:
        raise NoSuccessfulRun(
            f"{summary.headline()}; the tables are empty. "
            f"See `damon-eval campaign status` for each run's reason"
        )
