"""Overhead bar charts: one per metric, workloads clustered, 95 % CI error bars.

Written as PNG and SVG with the Agg backend and fixed metadata, so the same
table gives byte-identical files.  Colours are the Okabe-Ito palette (safe for
the common colour-vision deficiencies), with hatching as a second cue.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from damon_eval.analysis.tables import Cell, MetricTable
from damon_eval.atomic import atomic_write_bytes
from damon_eval.metrics import BASELINE_CONFIG, SEED_CONFIGS

OKABE_ITO = ("#E69F00", "#56B4E9", "#009E73", "#0072B2", "#D55E00", "#CC79A7", "#F0E442", "#000000")
HATCHES = ("", "//", "..", "xx", "\\\\", "oo", "--", "++")
# A configuration keeps its colour in every plot: the seed's five, then the rest in turn.
_SEED_STYLE = {config: i for i, config in enumerate(SEED_CONFIGS[1:])}
_BASELINE_COLOUR = "#999999"
FORMATS = ("png", "svg")
_RC = {
    "svg.hashsalt": "damon-eval",
    "svg.fonttype": "none",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
_METADATA = {
    "png": {"Software": None},
    "svg": {"Date": None, "Creator": None},
}


def _style(config: str, others: list[str]) -> tuple[str, str]:
    """Colour and hatch of a configuration's bars."""
    if config == BASELINE_CONFIG:
        return _BASELINE_COLOUR, "||"
    if config in _SEED_STYLE:
        index = _SEED_STYLE[config]
    else:
        index = len(_SEED_STYLE) + others.index(config)
    return OKABE_ITO[index % len(OKABE_ITO)], HATCHES[index % len(HATCHES)]


def _bar(cell: Cell, relative: bool) -> tuple[float, float, float]:
    """Height and the lower/upper error of one bar (NaN when unknown)."""
    nan = math.nan
    if relative:
        if cell.overhead_pct is None:
            return nan, 0.0, 0.0
        low, high = cell.overhead_ci95 or (cell.overhead_pct, cell.overhead_pct)
        return cell.overhead_pct, cell.overhead_pct - low, high - cell.overhead_pct
    if cell.estimate is None:
        return nan, 0.0, 0.0
    value = cell.estimate.value
    low, high = cell.estimate.ci95 or (value, value)
    return value, value - low, high - value


def overhead_figure(table: MetricTable) -> Figure:
    """The figure of one table (overheads, or values when it has no baseline)."""
    relative = table.baseline is not None
    series = list(table.compared_configs if relative else table.configs)
    groups = [*table.workloads, table.summary_label] if table.summary else list(table.workloads)
    nr_bars = max(len(series), 1)
    width_in = max(6.4, 1.2 + 0.14 * len(groups) * (nr_bars + 1))
    with matplotlib.rc_context(_RC):
        figure = Figure(figsize=(width_in, 4.8), dpi=100)
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        bar_width = 0.8 / nr_bars
        others = [c for c in series if c not in _SEED_STYLE and c != BASELINE_CONFIG]
        for index, config in enumerate(series):
            heights, lows, highs, xs = [], [], [], []
            for position, group in enumerate(groups):
                cell = (
                    table.summary.get(config)
                    if group == table.summary_label and position == len(groups) - 1
                    else table.cell(group, config)
                )
                if cell is None:
                    continue
                height, low, high = _bar(cell, relative)
                heights.append(height)
                lows.append(low)
                highs.append(high)
                xs.append(position - 0.4 + bar_width * (index + 0.5))
            axes.bar(
                xs,
                heights,
                bar_width,
                yerr=[lows, highs],
                capsize=1.5,
                label=config,
                color=_style(config, others)[0],
                hatch=_style(config, others)[1],
                edgecolor="#333333",
                linewidth=0.3,
                error_kw={"elinewidth": 0.6, "ecolor": "#222222"},
            )
        axes.set_xticks(range(len(groups)), groups, rotation=60, ha="right")
        axes.set_xlim(-0.6, len(groups) - 0.4)
        if table.summary:
            axes.axvline(len(groups) - 1.5, color="#888888", linewidth=0.6, linestyle="--")
        axes.axhline(0, color="#000000", linewidth=0.6)
        axes.grid(axis="y", linewidth=0.3, alpha=0.6)
        unit = table.unit
        if relative:
            axes.set_ylabel(f"{table.metric} overhead vs {table.baseline} (%)")
            title = f"{table.metric}: overhead against {table.baseline}"
        else:
            axes.set_ylabel(f"{table.metric} ({unit})")
            title = f"{table.metric} ({unit})"
        axes.set_title(f"{title}; mean over repeats, error bars: 95 % CI")
        axes.legend(
            title="configuration",
            loc="upper left",
            bbox_to_anchor=(1.0, 1.0),
            fontsize=8,
            frameon=False,
        )
        figure.tight_layout()
    return figure


def figure_bytes(figure: Figure, fmt: str) -> bytes:
    buffer = io.BytesIO()
    with matplotlib.rc_context(_RC):
        figure.savefig(buffer, format=fmt, metadata=_METADATA[fmt])
    return buffer.getvalue()


def plot_table(table: MetricTable, stem: Path, formats: tuple[str, ...] = FORMATS) -> list[Path]:
    """Write ``<stem>.png`` and ``<stem>.svg``; return the paths."""
    figure = overhead_figure(table)
    return _write_figure(figure, stem, formats)


def plot_message(message: str, stem: Path, formats: tuple[str, ...] = FORMATS) -> list[Path]:
    """A figure that says why there is no plot (e.g. a metric nobody measured)."""
    with matplotlib.rc_context(_RC):
        figure = Figure(figsize=(6, 1.2))
        FigureCanvasAgg(figure)
        figure.text(0.5, 0.5, message, ha="center", va="center", wrap=True)
    return _write_figure(figure, stem, formats)


def _write_figure(figure: Figure, stem: Path, formats: tuple[str, ...]) -> list[Path]:
    written = []
    for fmt in formats:
        path = Path(f"{stem}.{fmt}")
        atomic_write_bytes(path, figure_bytes(figure, fmt))
        written.append(path)
    return written
