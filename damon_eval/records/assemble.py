"""Turn a stream of region events into whole snapshots.

A trace has one event per region.  Every event of one snapshot carries the
same target and ``nr_regions``; its timestamp differs by microseconds from its
neighbours' (each tracepoint hit is stamped separately), so timestamps cannot
group events.  Regions of a snapshot are emitted in ascending address order,
so a new snapshot of a target starts where

* the target changes (events of several targets may be interleaved: events
  are first split per target, keeping file order within each), or
* the address goes back (``start < previous end``), or
* ``nr_regions`` changes.

Between two such boundaries, ``damon_aggregated`` events are cut into
snapshots of ``nr_regions`` events.  A piece shorter than ``nr_regions``
before a later boundary lost events (perf can drop them under load): it is
dropped and reported in a warning, instead of being glued to the next
snapshot as damo does.  ``damos_before_apply`` emits events only for the
regions a scheme was tried on, so its snapshots are simply the pieces between
boundaries.

The snapshot's time is the timestamp of its first event (damo's choice).  Its
start is the previous snapshot's time of the same target; the first
snapshot's start stays :data:`START_UNKNOWN` (resolved once the whole record
was read, see :mod:`damon_eval.records.store`).
"""

from __future__ import annotations

import numpy as np

from damon_eval.errors import RecordFormatError
from damon_eval.records.model import (
    ADDR_DTYPE,
    COUNT_DTYPE,
    END_DTYPE,
    EVENT_AGGREGATED,
    START_UNKNOWN,
    TARGET_DTYPE,
    SnapshotChunk,
    TargetKey,
)
from damon_eval.records.text_events import ParsedEvents


class SnapshotAssembler:
    """Stateful: feed event blocks in file order, collect complete snapshots."""

    def __init__(self, event: str, source: str):
        self.event = event
        self.source = source
        self.targets: list[TargetKey] = []
        self._target_index: dict[TargetKey, int] = {}
        self._carry: ParsedEvents | None = None
        self._carry_tidx = np.zeros(0, dtype=np.int32)
        self._last_end: dict[int, int] = {}
        self.warnings: list[str] = []
        self.dropped_snapshots = 0

    # -- targets ---------------------------------------------------------
    def _index_of(self, key: TargetKey) -> int:
        idx = self._target_index.get(key)
        if idx is None:
            idx = len(self.targets)
            self._target_index[key] = idx
            self.targets.append(key)
        return idx

    def _target_indices(self, events: ParsedEvents) -> np.ndarray:
        # Targets are numbered in order of first appearance in the file.
        if self.event == EVENT_AGGREGATED:
            values, first, inverse = np.unique(
                events.target_id, return_index=True, return_inverse=True
            )
            keys = [TargetKey(int(v)) for v in values]
        else:
            combos = np.rec.fromarrays(
                [events.context_idx, events.scheme_idx, events.target_id],
                names=("ctx", "scheme", "target"),
            )
            values, first, inverse = np.unique(combos, return_index=True, return_inverse=True)
            keys = [TargetKey(int(v["target"]), int(v["scheme"]), int(v["ctx"])) for v in values]
        lookup = np.zeros(len(keys), dtype=TARGET_DTYPE)
        for k in np.argsort(first, kind="stable").tolist():
            lookup[k] = self._index_of(keys[k])
        return lookup[inverse]

    # -- assembly --------------------------------------------------------
    def feed(self, events: ParsedEvents) -> SnapshotChunk:
        """Add a block of events; return the snapshots it completed."""
        if events.size == 0:
            return SnapshotChunk.empty()
        tidx = self._target_indices(events)
        if self._carry is not None and self._carry.size:
            events = ParsedEvents.concat([self._carry, events])
            tidx = np.concatenate([self._carry_tidx, tidx])
        return self._assemble(events, tidx, final=False)

    def finish(self, *, cut_line: bool = False) -> tuple[SnapshotChunk, int, int | None]:
        """Flush what is left at the end of the file.

        ``cut_line``: the file ended inside a line, so the snapshot of the last
        complete line is incomplete too (this is how a cut ``damos_before_apply``
        round, which has no fixed size, is recognised).
        Returns the last snapshots, the number of trailing snapshots that were
        incomplete (a file cut short) and the line number where the first of
        them starts.
        """
        if self._carry is None or self._carry.size == 0:
            return SnapshotChunk.empty(), 0, None
        carry, tidx = self._carry, self._carry_tidx
        self._carry = None
        self._carry_tidx = np.zeros(0, dtype=np.int32)
        cut_first_line = None
        if cut_line and self.event != EVENT_AGGREGATED:
            # The carried run of the target of the last complete line is cut.
            last_target = tidx[int(np.argmax(carry.line_no))]
            mine = tidx == last_target
            cut_first_line = int(carry.line_no[mine].min())
            carry, tidx = carry.take(np.flatnonzero(~mine)), tidx[~mine]
            if carry.size == 0:
                return SnapshotChunk.empty(), 1, cut_first_line
        before = self.dropped_snapshots
        chunk = self._assemble(carry, tidx, final=True)
        truncated = self.dropped_snapshots - before
        first_line = int(carry.line_no[0]) if truncated else None
        self.dropped_snapshots = before
        if cut_first_line is not None:
            return chunk, truncated + 1, cut_first_line
        return chunk, truncated, first_line

    def _assemble(self, ev: ParsedEvents, tidx: np.ndarray, *, final: bool) -> SnapshotChunk:
        n = ev.size
        if np.any(tidx[1:] != tidx[:-1]):
            order = np.argsort(tidx, kind="stable")
            ev = ev.take(order)
            tidx = tidx[order]
        boundary = np.ones(n, dtype=bool)
        boundary[1:] = (
            (tidx[1:] != tidx[:-1])
            | (ev.start[1:] < ev.end[:-1])
            | (ev.nr_regions[1:] != ev.nr_regions[:-1])
        )
        seg_start = np.flatnonzero(boundary)
        seg_len = np.diff(np.append(seg_start, n))
        seg_tidx = tidx[seg_start]
        # The last segment of every target may continue in the next block.
        last_of_target = np.ones(seg_start.size, dtype=bool)
        last_of_target[:-1] = seg_tidx[1:] != seg_tidx[:-1]

        if self.event == EVENT_AGGREGATED:
            need = ev.nr_regions[seg_start]
            n_full = seg_len // need
            remainder = seg_len - n_full * need
            snap_start = np.repeat(seg_start, n_full) + _ramp(n_full) * np.repeat(need, n_full)
            snap_len = np.repeat(need, n_full)
            rem_start = seg_start + n_full * need
            carry_mask = (remainder > 0) & last_of_target & (not final)
            lost = (remainder > 0) & ~carry_mask
            if lost.any():
                self._warn_lost(ev, rem_start[lost], remainder[lost], need[lost], final)
        else:
            carry_mask = last_of_target & (not final)
            keep = ~carry_mask
            snap_start = seg_start[keep]
            snap_len = seg_len[keep]
            rem_start = seg_start
            remainder = seg_len

        if carry_mask.any():
            carry_rows = _ranges(rem_start[carry_mask], remainder[carry_mask])
            self._carry = ev.take(carry_rows)
            self._carry_tidx = tidx[carry_rows]
        else:
            self._carry = None
            self._carry_tidx = np.zeros(0, dtype=np.int32)
        return self._build(ev, tidx, snap_start, snap_len)

    def _warn_lost(
        self,
        ev: ParsedEvents,
        starts: np.ndarray,
        have: np.ndarray,
        need: np.ndarray,
        final: bool,
    ) -> None:
        self.dropped_snapshots += int(starts.size)
        if final:
            return  # reported as truncation by the reader
        line = int(ev.line_no[starts[0]])
        self.warnings.append(
            f"record {self.source}: line {line}: snapshot has {int(have[0])} of "
            f"{int(need[0])} regions (trace events lost?); dropped"
            + (f" (and {starts.size - 1} more such snapshots)" if starts.size > 1 else "")
        )

    def _build(
        self, ev: ParsedEvents, tidx: np.ndarray, snap_start: np.ndarray, snap_len: np.ndarray
    ) -> SnapshotChunk:
        if snap_start.size == 0:
            return SnapshotChunk.empty()
        end_ns = ev.time_ns[snap_start].astype(END_DTYPE)
        target = tidx[snap_start].astype(TARGET_DTYPE)
        # snap_start is grouped per target in file order, so the previous
        # snapshot of the same target is the previous entry.
        prev = np.empty_like(end_ns)
        prev[1:] = end_ns[:-1]
        first_of_target = np.ones(end_ns.size, dtype=bool)
        first_of_target[1:] = target[1:] != target[:-1]
        for i in np.flatnonzero(first_of_target):
            prev[i] = self._last_end.get(int(target[i]), START_UNKNOWN)
        last_of_target = np.ones(end_ns.size, dtype=bool)
        last_of_target[:-1] = target[1:] != target[:-1]
        for i in np.flatnonzero(last_of_target):
            self._last_end[int(target[i])] = int(end_ns[i])
        backwards = (prev != START_UNKNOWN) & (end_ns < prev)
        if backwards.any():
            i = int(np.argmax(backwards))
            raise RecordFormatError(
                f"record {self.source}: line {int(ev.line_no[snap_start[i]])}: trace is not "
                f"time-sorted (snapshot at {end_ns[i]} ns after one at {prev[i]} ns)"
            )
        # Chronological order across targets (stable: file order on ties).
        order = np.argsort(end_ns, kind="stable")
        snap_start, snap_len = snap_start[order], snap_len[order]
        offsets = np.zeros(snap_start.size + 1, dtype=np.int64)
        np.cumsum(snap_len, out=offsets[1:])
        rows = _ranges(snap_start, snap_len)
        return SnapshotChunk(
            end_ns=end_ns[order],
            start_ns=prev[order],
            target=target[order],
            offsets=offsets,
            start=ev.start[rows].astype(ADDR_DTYPE, copy=False),
            end=ev.end[rows].astype(ADDR_DTYPE, copy=False),
            nr_accesses=ev.nr_accesses[rows].astype(COUNT_DTYPE, copy=False),
            age=ev.age[rows].astype(COUNT_DTYPE, copy=False),
        )


def _ramp(counts: np.ndarray) -> np.ndarray:
    """``[0..counts[0]), [0..counts[1]), ...`` concatenated."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.zeros(counts.size, dtype=np.int64)
    np.cumsum(counts[:-1], out=starts[1:])
    return np.arange(total, dtype=np.int64) - np.repeat(starts, counts)


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + l)`` for every pair."""
    return np.repeat(starts, lengths) + _ramp(lengths)
