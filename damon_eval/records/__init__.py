"""DAMON record formats and reports (raw, heats, wss, accuracy); see docs/reports.md.

Typical use::

    from damon_eval.records import load_record, wss_distribution, heatmap_grid

    record = load_record("record.perf_script")          # format auto-detected
    dists = wss_distribution(record)                      # one per target
    heatmap = heatmap_grid(record, tres=500, ares=500)    # .grid[time, address]

The names below are imported on first use (PEP 562), so a report that reads one
record format does not load the ground truth, the plots or the exporters.
"""

from __future__ import annotations

import importlib

# A name that is also a submodule is imported now: importing the submodule later would
# set the package attribute to the module and shadow a lazy export.
from damon_eval.records.accuracy import accuracy as accuracy

# name -> module that defines it (submodules of records, or a full module path)
_EXPORTS = {
    "AGE_UNKNOWN": "model",
    "EXPORT_FORMATS": "writers",
    "GroundTruth": "damon_eval.workloads.truth",
    "Heatmap": "heats",
    "Record": "store",
    "RecordInfo": "model",
    "SnapshotChunk": "model",
    "TargetGuide": "heats",
    "TargetKey": "model",
    "WssDistribution": "wss",
    "detect_format": "formats",
    "export_record": "writers",
    "guide_lines": "heats",
    "guides": "heats",
    "heatmap_grid": "heats",
    "heats_lines": "heats",
    "load_ground_truth": "damon_eval.workloads.truth",
    "load_record": "store",
    "plot_heatmap": "heats",
    "plot_wss": "wss",
    "raw_lines": "raw",
    "wss_dataframe": "wss",
    "wss_distribution": "wss",
    "wss_lines": "wss",
}

__all__ = sorted([*_EXPORTS, "accuracy"])


def __getattr__(name: str):
    try:
        module = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    path = module if module.startswith("damon_eval.") else f"{__name__}.{module}"
    value = getattr(importlib.import_module(path), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
