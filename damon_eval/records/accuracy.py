"""``report accuracy``: DAMON's view of a synthetic workload against its ground truth.

The access generator writes which address ranges it really accessed in each
phase (``damon_eval/data/schemas/ground_truth.schema.json``, read by
:mod:`damon_eval.workloads.truth`; times are CLOCK_MONOTONIC seconds, the clock
of the record).  Per phase:

* only snapshots whose whole interval ``[start, end]`` lies in
  ``[phase start + settle, phase end]`` are used.  A snapshot straddling a
  phase change mixes two patterns, and DAMON needs time to find a new pattern:
  its adaptive regions adjustment splits every region into at most two or
  three pieces per aggregation interval, so isolating a hot range ``h`` bytes
  large in a cold region ``R`` bytes large takes about ``log2(R / h)``
  intervals (10 for a 1000x ratio).  The default ``settle`` is therefore ten
  aggregation intervals (the record's, else the median snapshot interval);
* DAMON's WSS of a snapshot is the size of its regions with
  ``nr_accesses >= acc_thres``; the phase's WSS is their mean, compared with
  the true accessed bytes (the union of the phase's ranges with weight > 0):
  ``wss_error = (mean WSS - true) / true``;
* precision and recall by bytes: over the used snapshots,
  ``sum |D ∩ T| / sum |D|`` and ``sum |D ∩ T| / (n * |T|)`` with ``D`` the
  bytes DAMON saw as accessed and ``T`` the truly accessed bytes.

Accessed ``start``/``end`` are absolute addresses when they lie inside their
region, otherwise offsets from the region's start.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from damon_eval.errors import ConfigError
from damon_eval.records.store import Record, as_record
from damon_eval.workloads.truth import GroundTruth, TruthPhase, load_ground_truth

DEFAULT_SETTLE_INTERVALS = 10


@dataclass(frozen=True, slots=True)
class Phase:
    """A ground-truth phase as the accuracy sees it: nanoseconds, and the true ranges."""

    name: str
    start_ns: int
    end_ns: int
    ranges: tuple[tuple[int, int], ...]  # truly accessed, disjoint, ascending

    @property
    def true_bytes(self) -> int:
        return sum(e - s for s, e in self.ranges)

    @classmethod
    def of(cls, phase: TruthPhase) -> Phase:
        accessed = [a for a in phase.accessed if a.weight > 0]
        return cls(
            name=phase.name,
            start_ns=round(phase.start_s * 1e9),
            end_ns=round(phase.end_s * 1e9),
            ranges=_union_list([a.start for a in accessed], [a.end for a in accessed]),
        )


def _union_list(starts: list[int], ends: list[int]) -> tuple[tuple[int, int], ...]:
    out: list[list[int]] = []
    for s, e in sorted(zip(starts, ends, strict=True)):
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return tuple((s, e) for s, e in out)


def _choose_target(record: Record, truth: GroundTruth, target: str | None) -> int:
    if target is not None:
        idx = record.target_index(target)
        assert idx is not None
        return idx
    keys = record.info.targets
    by_pid = [i for i, k in enumerate(keys) if k.target_id == truth.pid]
    if len(by_pid) == 1:
        return by_pid[0]
    if len(keys) == 1:
        return 0
    raise ConfigError(
        f"record {record.info.path} has several targets and none is pid {truth.pid}; "
        f"choose one with --target (valid: {', '.join(str(k) for k in keys)})"
    )


def aggregation_interval_ns(record: Record, target: int) -> float:
    if record.info.intervals is not None:
        return record.info.intervals.aggr_us * 1000.0
    durations = [
        c.end_ns[c.target == target] - c.start_ns[c.target == target] for c in record.chunks()
    ]
    joined = np.concatenate(durations) if durations else np.zeros(0)
    return float(np.median(joined)) if joined.size else 0.0


def accuracy(
    record: Record | Path | str,
    truth: GroundTruth | Path | str,
    *,
    target: str | None = None,
    acc_thres: int = 1,
    settle_s: float | None = None,
):
    """Per-phase accuracy table (pandas DataFrame), see the module docstring."""
    import pandas as pd

    record = as_record(record)
    if not isinstance(truth, GroundTruth):
        truth = load_ground_truth(Path(truth))
    tidx = _choose_target(record, truth, target)
    aggr_ns = aggregation_interval_ns(record, tidx)
    settle_ns = DEFAULT_SETTLE_INTERVALS * aggr_ns if settle_s is None else float(settle_s) * 1e9
    phases = [Phase.of(phase) for phase in truth.phases]
    n_phases = len(phases)
    n_used = np.zeros(n_phases, dtype=np.int64)
    damon_bytes = np.zeros(n_phases, dtype=np.float64)
    both_bytes = np.zeros(n_phases, dtype=np.float64)
    for chunk in record.chunks():
        mine = np.flatnonzero(chunk.target == tidx)
        if mine.size == 0:
            continue
        sub = chunk.take(mine)
        accessed = sub.nr_accesses >= acc_thres
        rows = sub.row_snapshot()
        sizes = (sub.end - sub.start).astype(np.float64)
        wss = np.bincount(rows, weights=np.where(accessed, sizes, 0.0), minlength=sub.n_snapshots)
        for p, phase in enumerate(phases):
            used = (sub.start_ns >= phase.start_ns + settle_ns) & (sub.end_ns <= phase.end_ns)
            if not used.any():
                continue
            overlap = np.zeros(sub.n_regions, dtype=np.float64)
            for s, e in phase.ranges:
                lo = np.maximum(sub.start, np.uint64(s))
                hi = np.minimum(sub.end, np.uint64(e))
                overlap += np.where(hi > lo, (hi - lo).astype(np.float64), 0.0)
            inter = np.bincount(
                rows, weights=np.where(accessed, overlap, 0.0), minlength=sub.n_snapshots
            )
            n_used[p] += int(used.sum())
            damon_bytes[p] += float(wss[used].sum())
            both_bytes[p] += float(inter[used].sum())
    rows_out = []
    for p, phase in enumerate(phases):
        n = int(n_used[p])
        true_bytes = phase.true_bytes
        mean_wss = damon_bytes[p] / n if n else math.nan
        rows_out.append(
            {
                "phase": phase.name,
                "start_s": phase.start_ns / 1e9,
                "end_s": phase.end_ns / 1e9,
                "snapshots": n,
                "true_bytes": true_bytes,
                "damon_wss_bytes": mean_wss,
                "wss_error": (mean_wss - true_bytes) / true_bytes if n and true_bytes else math.nan,
                "precision": both_bytes[p] / damon_bytes[p] if damon_bytes[p] else math.nan,
                "recall": both_bytes[p] / (n * true_bytes) if n and true_bytes else math.nan,
            }
        )
    frame = pd.DataFrame(rows_out)
    frame.attrs.update(
        {
            "target": str(record.info.targets[tidx]),
            "acc_thres": acc_thres,
            "settle_s": settle_ns / 1e9,
            "aggregation_interval_s": aggr_ns / 1e9,
        }
    )
    return frame


def accuracy_text(frame) -> str:
    """Aligned table for the terminal."""
    header = (
        f"# target {frame.attrs['target']}, acc_thres {frame.attrs['acc_thres']}, "
        f"settle {frame.attrs['settle_s']:.3f} s "
        f"(aggregation interval {frame.attrs['aggregation_interval_s']:.3f} s)"
    )
    cols = ["phase", "snapshots", "true_bytes", "damon_wss", "wss_error", "precision", "recall"]
    lines = [header]
    body = []
    for r in frame.to_dict("records"):
        body.append(
            [
                r["phase"],
                str(r["snapshots"]),
                str(r["true_bytes"]),
                _fmt(r["damon_wss_bytes"], "{:.0f}"),
                _fmt(r["wss_error"], "{:+.2%}"),
                _fmt(r["precision"], "{:.3f}"),
                _fmt(r["recall"], "{:.3f}"),
            ]
        )
    widths = [max(len(c), *(len(b[i]) for b in body)) for i, c in enumerate(cols)]
    lines.append("  ".join(c.rjust(w) for c, w in zip(cols, widths, strict=True)))
    for b in body:
        lines.append("  ".join(v.rjust(w) for v, w in zip(b, widths, strict=True)))
    return "\n".join(lines)


def _fmt(value: float, spec: str) -> str:
    return (
        "-"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else spec.format(value)
    )


def accuracy_json(frame) -> str:
    rows = []
    for r in frame.to_dict("records"):
        rows.append(
            {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
        )
    return json.dumps({"settings": dict(frame.attrs), "phases": rows}, indent=2, sort_keys=True)
