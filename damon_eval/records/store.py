"""A loaded record: its chunks (in memory, or spilled to a temporary Parquet file).

Reports need a record more than once (``heats`` first finds the used address
ranges, then fills the grid) and need facts only known at the end (the start
of a target's first snapshot, which damo infers from the mean snapshot
interval of the whole record).  :func:`load_record` reads the file once,
keeps the parsed columns in memory up to ``memory_budget`` bytes and spills
anything beyond to a temporary Parquet file, so records of hours stay within
a bounded amount of memory.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from damon_eval.errors import ConfigError, RecordFormatError
from damon_eval.records.formats import open_reader
from damon_eval.records.model import START_UNKNOWN, RecordInfo, SnapshotChunk, TargetKey
from damon_eval.records.reader import RecordReader

DEFAULT_MEMORY_BUDGET = int(os.environ.get("DAMON_EVAL_RECORD_MEMORY", 128 << 20))


@dataclass(frozen=True, slots=True)
class TargetStats:
    n_snapshots: int
    first_end_ns: int
    last_end_ns: int
    first_start_ns: int  # resolved (damo's rule, see Record._resolve_first_starts)


class Record:
    """A fully read record; iterate :meth:`chunks` as often as needed."""

    def __init__(self, reader: RecordReader, memory_budget: int = DEFAULT_MEMORY_BUDGET):
        self._memory: list[SnapshotChunk] = []
        self._spill_dir: str | None = None
        self._spill_path: Path | None = None
        self._spill_writer = None
        first_end: dict[int, int] = {}
        first_start: dict[int, int] = {}
        last_end: dict[int, int] = {}
        count: dict[int, int] = {}
        in_memory = 0
        for chunk in reader:
            _update_stats(chunk, first_end, first_start, last_end, count)
            if in_memory + chunk.nbytes > memory_budget:
                self._spill(chunk)
            else:
                self._memory.append(chunk)
                in_memory += chunk.nbytes
        if self._spill_writer is not None:
            self._spill_writer.close(
                reader.targets, reader.target_label, reader.event, reader.intervals
            )
        self.info = RecordInfo(
            path=str(reader.path),
            format=reader.format,
            event=reader.event,
            targets=tuple(reader.targets),
            target_label=reader.target_label,
            intervals=reader.intervals,
            warnings=tuple(reader.warnings),
        )
        self.n_snapshots = sum(count.values())
        if self.n_snapshots == 0:
            raise RecordFormatError(f"record {reader.path}: no complete snapshots")
        self.stats = self._resolve_first_starts(first_end, first_start, last_end, count)

    # -- spilling --------------------------------------------------------
    def _spill(self, chunk: SnapshotChunk) -> None:
        from damon_eval.records.parquet import ParquetChunkWriter

        if self._spill_writer is None:
            self._spill_dir = tempfile.mkdtemp(prefix="damon-eval-record-")
            weakref.finalize(self, shutil.rmtree, self._spill_dir, True)
            self._spill_path = Path(self._spill_dir) / "spill.parquet"
            self._spill_writer = ParquetChunkWriter(self._spill_path)
        self._spill_writer.write(chunk)

    @property
    def spilled(self) -> bool:
        return self._spill_path is not None

    # -- first snapshot starts -------------------------------------------
    def _resolve_first_starts(
        self,
        first_end: dict[int, int],
        first_start: dict[int, int],
        last_end: dict[int, int],
        count: dict[int, int],
    ) -> dict[int, TargetStats]:
        """damo infers a first snapshot's start as ``first_end - mean interval``.

        The mean interval is ``(last_end - first_end) / (n - 1)`` of the same
        target.  A target with one snapshot takes the record's aggregation
        interval if stated, else the mean interval of the other targets, else
        zero (it then covers no time on a heatmap).  A start the file states
        (damo's JSON) is kept as it is.
        """
        means = {t: (last_end[t] - first_end[t]) / (count[t] - 1) for t in count if count[t] >= 2}
        fallback = 0.0
        if self.info.intervals is not None:
            fallback = self.info.intervals.aggr_us * 1000.0
        elif means:
            fallback = float(np.mean(list(means.values())))
        stats = {}
        for t in count:
            interval = means.get(t, fallback)
            stats[t] = TargetStats(
                n_snapshots=count[t],
                first_end_ns=first_end[t],
                last_end_ns=last_end[t],
                first_start_ns=first_start.get(t, round(first_end[t] - interval)),
            )
        return stats

    def _fill_starts(self, chunk: SnapshotChunk) -> SnapshotChunk:
        unknown = chunk.start_ns == START_UNKNOWN
        if not unknown.any():
            return chunk
        duration = np.zeros(len(self.info.targets), dtype=np.int64)
        for t, s in self.stats.items():
            duration[t] = s.first_end_ns - s.first_start_ns
        start_ns = chunk.start_ns.copy()
        start_ns[unknown] = chunk.end_ns[unknown] - duration[chunk.target[unknown]]
        return chunk.with_start_ns(start_ns)

    # -- access ----------------------------------------------------------
    def chunks(self) -> Iterator[SnapshotChunk]:
        """All snapshots in time order, as chunks, with every start time known."""
        for chunk in self._memory:
            yield self._fill_starts(chunk)
        if self._spill_path is not None:
            from damon_eval.records.parquet import ParquetReader

            for chunk in ParquetReader(self._spill_path):
                yield self._fill_starts(chunk)

    def target_ids(self) -> list[TargetKey]:
        return list(self.info.targets)

    def target_index(self, spec: str | int | None) -> int | None:
        """Index of the target named ``spec`` (a target id, or ctx/scheme/target)."""
        if spec is None:
            return None
        text = str(spec)
        for i, key in enumerate(self.info.targets):
            if str(key) == text:
                return i
        matches = [i for i, key in enumerate(self.info.targets) if str(key.target_id) == text]
        if len(matches) == 1:
            return matches[0]
        valid = ", ".join(str(k) for k in self.info.targets)
        raise ConfigError(f"record {self.info.path}: no target {text!r} (valid: {valid})")

    def target_name(self, idx: int) -> str:
        return str(self.info.targets[idx])


def _update_stats(
    chunk: SnapshotChunk,
    first_end: dict[int, int],
    first_start: dict[int, int],
    last_end: dict[int, int],
    count: dict[int, int],
) -> None:
    if chunk.n_snapshots == 0:
        return
    targets, first_idx, counts = np.unique(chunk.target, return_index=True, return_counts=True)
    last_idx = chunk.n_snapshots - 1 - np.unique(chunk.target[::-1], return_index=True)[1]
    for t, fi, li, c in zip(targets.tolist(), first_idx, last_idx, counts, strict=True):
        if t not in first_end:
            first_end[t] = int(chunk.end_ns[fi])
            if chunk.start_ns[fi] != START_UNKNOWN:
                first_start[t] = int(chunk.start_ns[fi])
        last_end[t] = int(chunk.end_ns[li])
        count[t] = count.get(t, 0) + int(c)


def load_record(
    path: Path | str,
    *,
    format: str | None = None,
    allow_partial: bool = False,
    event: str | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
) -> Record:
    """Read ``path`` (format auto-detected unless given) into a :class:`Record`."""
    reader = open_reader(Path(path), format=format, allow_partial=allow_partial, event=event)
    return Record(reader, memory_budget=memory_budget)


def as_record(record_or_path: Record | Path | str) -> Record:
    """Library functions accept a loaded record or a path to load."""
    if isinstance(record_or_path, Record):
        return record_or_path
    return load_record(record_or_path)
