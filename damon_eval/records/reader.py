"""The base of every record reader, and the chunk the per-snapshot readers assemble.

A reader is an iterable of :class:`SnapshotChunk` plus what it learned (targets,
warnings, truncation) once iterated; :mod:`damon_eval.records.formats` picks one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from damon_eval.errors import RecordFormatError
from damon_eval.records.model import (
    ADDR_DTYPE,
    AGE_UNKNOWN,
    COUNT_DTYPE,
    END_DTYPE,
    EVENT_AGGREGATED,
    TARGET_DTYPE,
    Intervals,
    SnapshotChunk,
    TargetKey,
)

REGION_DTYPE = np.dtype([("start", "<u8"), ("end", "<u8"), ("nr_accesses", "<u4")])


class RecordReader:
    """Base: iterate for chunks; afterwards the attributes describe the record."""

    format: str = ""

    def __init__(self, path: Path, *, allow_partial: bool = False):
        self.path = Path(path)
        self.allow_partial = allow_partial
        self.targets: list[TargetKey] = []
        self.target_label = "target_id"
        self.event = EVENT_AGGREGATED
        self.intervals: Intervals | None = None
        self.warnings: list[str] = []
        self.n_snapshots = 0

    def __iter__(self) -> Iterator[SnapshotChunk]:
        for chunk in self._chunks():
            self.n_snapshots += chunk.n_snapshots
            yield chunk

    def _chunks(self) -> Iterator[SnapshotChunk]:
        raise NotImplementedError

    def _truncated(self, where: str, complete: int) -> None:
        message = f"record {self.path}: truncated at {where}; "
        if not self.allow_partial:
            raise RecordFormatError(
                message + f"{complete} complete snapshots precede the cut "
                "(the file may still be arriving; allow partial records to use them)"
            )
        self.warnings.append(message + f"used {complete} complete snapshots")


def chunk_from_pending(pending: list[tuple[int, int, int, np.ndarray]]) -> SnapshotChunk:
    counts = np.array([p[3].size for p in pending], dtype=np.int64)
    offsets = np.zeros(counts.size + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    regions = np.concatenate([p[3] for p in pending]) if offsets[-1] else np.zeros(0, REGION_DTYPE)
    return SnapshotChunk(
        end_ns=np.array([p[0] for p in pending], dtype=END_DTYPE),
        start_ns=np.array([p[1] for p in pending], dtype=END_DTYPE),
        target=np.array([p[2] for p in pending], dtype=TARGET_DTYPE),
        offsets=offsets,
        start=regions["start"].astype(ADDR_DTYPE),
        end=regions["end"].astype(ADDR_DTYPE),
        nr_accesses=regions["nr_accesses"].astype(COUNT_DTYPE),
        age=np.full(regions.size, AGE_UNKNOWN, dtype=COUNT_DTYPE),
    )
