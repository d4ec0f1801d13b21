"""The in-memory form of a DAMON record: columnar snapshot chunks.

A record is read as a sequence of :class:`SnapshotChunk` objects.  Each chunk
holds whole snapshots only (a snapshot never straddles two chunks) as numpy
columns: per snapshot its time, start time and target index, and per region
its address range, ``nr_accesses`` and ``age``.  Rows of snapshot ``i`` are
``offsets[i]:offsets[i + 1]``.

Targets are stored as an ``int32`` index into :attr:`RecordInfo.targets`
because target ids of old kernels are kernel pointers that do not fit in 32
(or signed 64) bits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

#: ``age`` of a region whose trace line carried no age (kernels before late 2021,
#: and the seed-era binary format).
AGE_UNKNOWN = np.uint32(0xFFFFFFFF)
#: ``start_ns`` of a target's first snapshot in formats that only store end
#: times (perf script, tracefs, damon.data) until the whole record was seen.
START_UNKNOWN = np.int64(np.iinfo(np.int64).min)

END_DTYPE = np.dtype(np.int64)
TARGET_DTYPE = np.dtype(np.int32)
ADDR_DTYPE = np.dtype(np.uint64)
COUNT_DTYPE = np.dtype(np.uint32)

FORMATS = ("perf_script", "tracefs", "json", "json_compressed", "damon_data", "parquet")

EVENT_AGGREGATED = "damon_aggregated"
EVENT_BEFORE_APPLY = "damos_before_apply"


@dataclass(frozen=True, slots=True, order=True)
class TargetKey:
    """One monitoring target of a record.

    ``target_id`` is what the trace prints (``target_id`` of ``damon_aggregated``,
    ``target_idx`` of ``damos_before_apply``, the pid in seed-era records).
    ``scheme_idx``/``context_idx`` are set only for ``damos_before_apply``
    records, whose snapshots are per scheme.
    """

    target_id: int
    scheme_idx: int | None = None
    context_idx: int | None = None

    def __str__(self) -> str:
        if self.scheme_idx is None:
            return str(self.target_id)
        return f"{self.context_idx}/{self.scheme_idx}/{self.target_id}"


@dataclass(frozen=True, slots=True)
class Intervals:
    """Monitoring intervals in microseconds, when the record states them."""

    sample_us: int
    aggr_us: int
    update_us: int


@dataclass(frozen=True, slots=True)
class RecordInfo:
    """What is known about a record besides its snapshots."""

    path: str
    format: str
    event: str = EVENT_AGGREGATED
    targets: tuple[TargetKey, ...] = ()
    #: Label the seed used for target ids: ``pid`` for seed-era binary records
    #: (their target ids were pids), ``target_id`` otherwise.
    target_label: str = "target_id"
    intervals: Intervals | None = None
    warnings: tuple[str, ...] = field(default=())


def target_indices(target: np.ndarray) -> list[int]:
    """The distinct target indices of ``target``, ascending.

    Not ``np.unique``: it imports ``numpy.ma`` (30-60 ms, a tenth of a small
    report's run), and these arrays hold one value per snapshot of a chunk.
    """
    return sorted(set(target.tolist()))


def _empty(dtype: np.dtype) -> np.ndarray:
    return np.zeros(0, dtype=dtype)


@dataclass(frozen=True, slots=True)
class SnapshotChunk:
    """Whole snapshots in columnar form (see the module docstring)."""

    end_ns: np.ndarray  # int64[n]: snapshot time (end of its aggregation interval)
    start_ns: np.ndarray  # int64[n]: start of the interval, START_UNKNOWN if not known yet
    target: np.ndarray  # int32[n]: index into RecordInfo.targets
    offsets: np.ndarray  # int64[n + 1]
    start: np.ndarray  # uint64[m]
    end: np.ndarray  # uint64[m]
    nr_accesses: np.ndarray  # uint32[m]
    age: np.ndarray  # uint32[m], AGE_UNKNOWN when absent

    @property
    def n_snapshots(self) -> int:
        return int(self.end_ns.size)

    @property
    def n_regions(self) -> int:
        return int(self.start.size)

    @property
    def nbytes(self) -> int:
        return sum(
            a.nbytes
            for a in (
                self.end_ns,
                self.start_ns,
                self.target,
                self.offsets,
                self.start,
                self.end,
                self.nr_accesses,
                self.age,
            )
        )

    def counts(self) -> np.ndarray:
        """Number of regions of each snapshot."""
        return np.diff(self.offsets)

    def row_snapshot(self) -> np.ndarray:
        """Snapshot index (within this chunk) of every region row."""
        return np.repeat(np.arange(self.n_snapshots, dtype=np.int64), self.counts())

    def sizes(self) -> np.ndarray:
        return self.end - self.start

    def take(self, snapshot_idx: np.ndarray) -> SnapshotChunk:
        """The snapshots ``snapshot_idx`` (in that order) as a new chunk."""
        snapshot_idx = np.asarray(snapshot_idx, dtype=np.int64)
        counts = self.counts()[snapshot_idx]
        offsets = np.zeros(snapshot_idx.size + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        if snapshot_idx.size and counts.sum():
            # Row index of every selected region, without a Python loop.
            starts = self.offsets[snapshot_idx]
            rows = np.repeat(starts - offsets[:-1], counts) + np.arange(offsets[-1])
        else:
            rows = np.zeros(0, dtype=np.int64)
        return SnapshotChunk(
            end_ns=self.end_ns[snapshot_idx],
            start_ns=self.start_ns[snapshot_idx],
            target=self.target[snapshot_idx],
            offsets=offsets,
            start=self.start[rows],
            end=self.end[rows],
            nr_accesses=self.nr_accesses[rows],
            age=self.age[rows],
        )

    def with_start_ns(self, start_ns: np.ndarray) -> SnapshotChunk:
        return SnapshotChunk(
            end_ns=self.end_ns,
            start_ns=start_ns,
            target=self.target,
            offsets=self.offsets,
            start=self.start,
            end=self.end,
            nr_accesses=self.nr_accesses,
            age=self.age,
        )

    @staticmethod
    def empty() -> SnapshotChunk:
        return SnapshotChunk(
            end_ns=_empty(END_DTYPE),
            start_ns=_empty(END_DTYPE),
            target=_empty(TARGET_DTYPE),
            offsets=np.zeros(1, dtype=np.int64),
            start=_empty(ADDR_DTYPE),
            end=_empty(ADDR_DTYPE),
            nr_accesses=_empty(COUNT_DTYPE),
            age=_empty(COUNT_DTYPE),
        )

    @staticmethod
    def concat(chunks: Sequence[SnapshotChunk]) -> SnapshotChunk:
        chunks = [c for c in chunks if c.n_snapshots]
        if not chunks:
            return SnapshotChunk.empty()
        if len(chunks) == 1:
            return chunks[0]
        offsets = [np.zeros(1, dtype=np.int64)]
        base = 0
        for chunk in chunks:
            offsets.append(chunk.offsets[1:] + base)
            base += chunk.n_regions
        return SnapshotChunk(
            end_ns=np.concatenate([c.end_ns for c in chunks]),
            start_ns=np.concatenate([c.start_ns for c in chunks]),
            target=np.concatenate([c.target for c in chunks]),
            offsets=np.concatenate(offsets),
            start=np.concatenate([c.start for c in chunks]),
            end=np.concatenate([c.end for c in chunks]),
            nr_accesses=np.concatenate([c.nr_accesses for c in chunks]),
            age=np.concatenate([c.age for c in chunks]),
        )

    @staticmethod
    def from_snapshots(
        snapshots: Iterable[tuple[int, int, int, Sequence[tuple[int, int, int, int]]]],
    ) -> SnapshotChunk:
        """Build a chunk from ``(end_ns, start_ns, target_idx, [(start, end, nr, age)])``.

        For tests and small hand-made records; readers build columns directly.
        """
        ends, starts, targets, counts, rows = [], [], [], [], []
        for end_ns, start_ns, target_idx, regions in snapshots:
            ends.append(end_ns)
            starts.append(start_ns)
            targets.append(target_idx)
            counts.append(len(regions))
            rows.extend(regions)
        offsets = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(np.asarray(counts, dtype=np.int64), out=offsets[1:])
        table = np.asarray(rows, dtype=object).reshape(-1, 4)
        return SnapshotChunk(
            end_ns=np.asarray(ends, dtype=END_DTYPE),
            start_ns=np.asarray(starts, dtype=END_DTYPE),
            target=np.asarray(targets, dtype=TARGET_DTYPE),
            offsets=offsets,
            start=np.asarray(table[:, 0].tolist(), dtype=ADDR_DTYPE),
            end=np.asarray(table[:, 1].tolist(), dtype=ADDR_DTYPE),
            nr_accesses=np.asarray(table[:, 2].tolist(), dtype=COUNT_DTYPE),
            age=np.asarray(table[:, 3].tolist(), dtype=COUNT_DTYPE),
        )
