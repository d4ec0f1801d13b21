"""DAMON record formats and reports (raw, heats, wss, accuracy); see docs/reports.md.

Typical use::

    from damon_eval.records import load_record, wss_distribution, heatmap_grid

    record = load_record("record.perf_script")          # format auto-detected
    dists = wss_distribution(record)                      # one per target
    heatmap = heatmap_grid(record, tres=500, ares=500)    # .grid[time, address]
"""

from __future__ import annotations

from damon_eval.records.accuracy import accuracy
from damon_eval.records.formats import detect_format
from damon_eval.records.heats import (
    Heatmap,
    TargetGuide,
    guide_lines,
    guides,
    heatmap_grid,
    heats_lines,
    plot_heatmap,
)
from damon_eval.records.model import AGE_UNKNOWN, RecordInfo, SnapshotChunk, TargetKey
from damon_eval.records.raw import raw_lines
from damon_eval.records.store import Record, load_record
from damon_eval.records.writers import EXPORT_FORMATS, export_record
from damon_eval.records.wss import (
    WssDistribution,
    plot_wss,
    wss_dataframe,
    wss_distribution,
    wss_lines,
)
from damon_eval.workloads.truth import GroundTruth, load_ground_truth

__all__ = [
    "AGE_UNKNOWN",
    "EXPORT_FORMATS",
    "GroundTruth",
    "Heatmap",
    "Record",
    "RecordInfo",
    "SnapshotChunk",
    "TargetGuide",
    "TargetKey",
    "WssDistribution",
    "accuracy",
    "detect_format",
    "export_record",
    "guide_lines",
    "guides",
    "heatmap_grid",
    "heats_lines",
    "load_ground_truth",
    "load_record",
    "plot_heatmap",
    "plot_wss",
    "raw_lines",
    "wss_dataframe",
    "wss_distribution",
    "wss_lines",
]
