"""The harness's own columnar record format: Parquet, one row per region.

Columns: ``snapshot`` (int64 serial), ``end_ns``, ``start_ns`` (int64),
``target`` (int32 index into the targets stored in the file metadata),
``start``, ``end`` (uint64), ``nr_accesses``, ``age`` (uint32).  The file's
key-value metadata ``damon_eval.record`` holds a JSON object with the format
version, the targets, the target label, the event and the intervals.  Row
groups hold whole snapshots.  Snapshots without regions cannot be
represented (traces never contain them).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from damon_eval.errors import RecordFormatError
from damon_eval.records.model import (
    ADDR_DTYPE,
    COUNT_DTYPE,
    END_DTYPE,
    TARGET_DTYPE,
    Intervals,
    SnapshotChunk,
    TargetKey,
)
from damon_eval.records.reader import RecordReader

META_KEY = b"damon_eval.record"
FORMAT_VERSION = 1

SCHEMA = pa.schema(
    [
        ("snapshot", pa.int64()),
        ("end_ns", pa.int64()),
        ("start_ns", pa.int64()),
        ("target", pa.int32()),
        ("start", pa.uint64()),
        ("end", pa.uint64()),
        ("nr_accesses", pa.uint32()),
        ("age", pa.uint32()),
    ]
)


def _metadata(
    targets: list[TargetKey], target_label: str, event: str, intervals: Intervals | None
) -> dict[bytes, bytes]:
    doc = {
        "format": "damon-eval-record",
        "version": FORMAT_VERSION,
        "targets": [[t.target_id, t.scheme_idx, t.context_idx] for t in targets],
        "target_label": target_label,
        "event": event,
        "intervals": None
        if intervals is None
        else [intervals.sample_us, intervals.aggr_us, intervals.update_us],
    }
    return {META_KEY: json.dumps(doc).encode()}


def _table(chunk: SnapshotChunk, first_serial: int) -> pa.Table:
    row_snapshot = chunk.row_snapshot()
    return pa.table(
        {
            "snapshot": row_snapshot + first_serial,
            "end_ns": chunk.end_ns[row_snapshot],
            "start_ns": chunk.start_ns[row_snapshot],
            "target": chunk.target[row_snapshot],
            "start": chunk.start,
            "end": chunk.end,
            "nr_accesses": chunk.nr_accesses,
            "age": chunk.age,
        },
        schema=SCHEMA,
    )


class ParquetChunkWriter:
    """Append chunks to a Parquet file; the metadata is written on close."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._writer: pq.ParquetWriter | None = None
        self._serial = 0

    def write(self, chunk: SnapshotChunk) -> None:
        if chunk.n_regions == 0:
            return
        table = _table(chunk, self._serial)
        self._serial += chunk.n_snapshots
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, SCHEMA, compression="zstd")
        self._writer.write_table(table, row_group_size=max(1, table.num_rows))

    def close(
        self,
        targets: list[TargetKey],
        target_label: str,
        event: str,
        intervals: Intervals | None,
    ) -> None:
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, SCHEMA, compression="zstd")
        self._writer.add_key_value_metadata(_metadata(targets, target_label, event, intervals))
        self._writer.close()


def write_parquet(
    path: Path,
    chunks: Iterable[SnapshotChunk],
    targets: list[TargetKey],
    target_label: str,
    event: str,
    intervals: Intervals | None,
) -> None:
    writer = ParquetChunkWriter(path)
    for chunk in chunks:
        writer.write(chunk)
    writer.close(targets, target_label, event, intervals)


class ParquetReader(RecordReader):
    format = "parquet"

    def _open(self) -> pq.ParquetFile:
        try:
            pf = pq.ParquetFile(self.path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise RecordFormatError(
                f"record {self.path}: not a readable Parquet file ({exc}); a Parquet record "
                "cannot be partially used"
            ) from None
        meta = pf.metadata.metadata or {}
        if META_KEY not in meta:
            raise RecordFormatError(
                f"record {self.path}: Parquet file without damon-eval record metadata"
            )
        doc = json.loads(meta[META_KEY])
        if doc.get("version") != FORMAT_VERSION:
            raise RecordFormatError(
                f"record {self.path}: damon-eval record version {doc.get('version')} "
                f"(valid: {FORMAT_VERSION})"
            )
        self.targets = [TargetKey(t[0], t[1], t[2]) for t in doc["targets"]]
        self.target_label = doc["target_label"]
        self.event = doc["event"]
        if doc.get("intervals"):
            self.intervals = Intervals(*doc["intervals"])
        missing = [n for n in SCHEMA.names if n not in pf.schema_arrow.names]
        if missing:
            raise RecordFormatError(f"record {self.path}: Parquet columns missing: {missing}")
        return pf

    def _chunks(self) -> Iterator[SnapshotChunk]:
        pf = self._open()
        carry: dict[str, np.ndarray] | None = None
        for g in range(pf.num_row_groups):
            try:
                table = pf.read_row_group(g, columns=SCHEMA.names)
            except (pa.ArrowInvalid, OSError) as exc:
                raise RecordFormatError(
                    f"record {self.path}: row group {g} unreadable ({exc})"
                ) from None
            cols = {n: table.column(n).to_numpy() for n in SCHEMA.names}
            if carry is not None:
                cols = {n: np.concatenate([carry[n], cols[n]]) for n in SCHEMA.names}
            serial = cols["snapshot"]
            if serial.size == 0:
                continue
            # A snapshot may continue in the next row group if someone else wrote the file.
            last_start = int(np.searchsorted(serial, serial[-1]))
            if g + 1 < pf.num_row_groups:
                carry = {n: cols[n][last_start:] for n in SCHEMA.names}
                cols = {n: cols[n][:last_start] for n in SCHEMA.names}
            else:
                carry = None
            chunk = _chunk_from_columns(cols)
            if chunk.n_snapshots:
                yield chunk


def _chunk_from_columns(cols: dict[str, np.ndarray]) -> SnapshotChunk:
    serial = cols["snapshot"]
    if serial.size == 0:
        return SnapshotChunk.empty()
    first = np.flatnonzero(np.concatenate(([True], serial[1:] != serial[:-1])))
    offsets = np.append(first, serial.size).astype(np.int64)
    return SnapshotChunk(
        end_ns=cols["end_ns"][first].astype(END_DTYPE),
        start_ns=cols["start_ns"][first].astype(END_DTYPE),
        target=cols["target"][first].astype(TARGET_DTYPE),
        offsets=offsets,
        start=cols["start"].astype(ADDR_DTYPE),
        end=cols["end"].astype(ADDR_DTYPE),
        nr_accesses=cols["nr_accesses"].astype(COUNT_DTYPE),
        age=cols["age"].astype(COUNT_DTYPE),
    )
