"""Write a record in any supported format (``damon-eval record export``).

``perf_script`` and ``json``/``json_compressed`` are written so that damo
3.4.3 reads them (``damo report ... -i FILE``); ``damon_data`` is the seed's
binary format (version 2); ``tracefs`` is the kernel's trace text (with or
without the flags column), mainly for tests; ``parquet`` is the harness's
cache.  All writes are atomic: the file appears complete or not at all.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from damon_eval.atomic import atomic_open
from damon_eval.errors import ConfigError
from damon_eval.records.model import AGE_UNKNOWN, EVENT_AGGREGATED, SnapshotChunk
from damon_eval.records.store import Record

EXPORT_FORMATS = ("perf_script", "tracefs", "json", "json_compressed", "damon_data", "parquet")


def _timestamp(ns: int) -> str:
    return f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}"


def _text_lines(record: Record, chunk: SnapshotChunk, head: Callable[[int, int], str]) -> str:
    """Event lines of ``chunk``; ``head(i, n)`` gives the text before ``start-end:``."""
    before_apply = record.info.event != EVENT_AGGREGATED
    out: list[str] = []
    starts = chunk.start.tolist()
    ends = chunk.end.tolist()
    nrs = chunk.nr_accesses.tolist()
    ages = chunk.age.tolist()
    unknown = int(AGE_UNKNOWN)
    for i in range(chunk.n_snapshots):
        lo, hi = int(chunk.offsets[i]), int(chunk.offsets[i + 1])
        prefix = head(i, hi - lo)
        for k in range(lo, hi):
            age = ages[k]
            tail = (" 0" if before_apply else "") if age == unknown else f" {age}"
            out.append(f"{prefix}{starts[k]}-{ends[k]}: {nrs[k]}{tail}\n")
    return "".join(out)


def _fields(record: Record, chunk: SnapshotChunk, i: int, n: int) -> str:
    key = record.info.targets[int(chunk.target[i])]
    if record.info.event == EVENT_AGGREGATED:
        return f"target_id={key.target_id} nr_regions={n} "
    return (
        f"ctx_idx={key.context_idx or 0} scheme_idx={key.scheme_idx or 0} "
        f"target_idx={key.target_id} nr_regions={n} "
    )


def write_perf_script(record: Record, path: Path) -> None:
    _write_trace_text(
        record, path, "       kdamond.0     0 [000] ", f": damon:{record.info.event}: "
    )


def write_tracefs(record: Record, path: Path, *, flags_column: bool = True) -> None:
    flags = " ....." if flags_column else ""
    _write_trace_text(
        record,
        path,
        f"       kdamond.0-0       [000]{flags} ",
        f": {record.info.event}: ",
        header=b"# tracer: nop\n#\n",
    )


def _write_trace_text(
    record: Record, path: Path, before_time: str, after_time: str, *, header: bytes = b""
) -> None:
    """One event line per region: ``before_time``, the timestamp, ``after_time``, the fields."""
    with atomic_open(path, "wb") as f:
        f.write(header)
        for chunk in record.chunks():
            ends = chunk.end_ns.tolist()

            def head(i: int, n: int, ends=ends, chunk=chunk) -> str:
                return before_time + _timestamp(ends[i]) + after_time + _fields(record, chunk, i, n)

            f.write(_text_lines(record, chunk, head).encode())


def _json_records(record: Record) -> Iterator[bytes]:
    """damo's ``[DamonRecord, ...]`` JSON, one target after another."""
    intervals = record.info.intervals
    intervals_kv = (
        None
        if intervals is None
        else {
            "sample_us": intervals.sample_us,
            "aggr_us": intervals.aggr_us,
            "ops_update_us": intervals.update_us,
        }
    )
    yield b"["
    for t, key in enumerate(record.info.targets):
        head = {
            "kdamond_idx": 0,
            "context_idx": key.context_idx or 0,
            "intervals": intervals_kv,
            "scheme_idx": key.scheme_idx,
            "target_id": key.target_id,
            "scheme_filters": [],
        }
        text = json.dumps(head)[:-1] + ', "snapshots": ['
        yield ((", " if t else "") + text).encode()
        first = True
        for chunk in record.chunks():
            mine = np.flatnonzero(chunk.target == t)
            if mine.size == 0:
                continue
            sub = chunk.take(mine)
            starts, ends = sub.start.tolist(), sub.end.tolist()
            nrs, ages = sub.nr_accesses.tolist(), sub.age.tolist()
            pieces = []
            for i in range(sub.n_snapshots):
                lo, hi = int(sub.offsets[i]), int(sub.offsets[i + 1])
                regions = [
                    {
                        "start": starts[k],
                        "end": ends[k],
                        "nr_accesses": {"samples": nrs[k], "percent": None},
                        "age": {
                            "usec": None,
                            "aggr_intervals": None if ages[k] == int(AGE_UNKNOWN) else ages[k],
                        },
                        "probe_hits": [],
                        "sz_filter_passed": 0,
                    }
                    for k in range(lo, hi)
                ]
                snapshot = {
                    "start_time": int(sub.start_ns[i]),
                    "end_time": int(sub.end_ns[i]),
                    "regions": regions,
                    "total_bytes": sum(ends[k] - starts[k] for k in range(lo, hi)),
                    "damos_stats": None,
                    "sample_interval_us": None,
                }
                pieces.append(("" if first else ", ") + json.dumps(snapshot))
                first = False
            yield "".join(pieces).encode()
        yield b'], "data_source": "unknown"}'
    yield b"]"


def write_json(record: Record, path: Path, *, compressed: bool = False) -> None:
    with atomic_open(path, "wb") as f:
        if compressed:
            compressor = zlib.compressobj()
            for piece in _json_records(record):
                f.write(compressor.compress(piece))
            f.write(compressor.flush())
        else:
            for piece in _json_records(record):
                f.write(piece)


def write_damon_data(record: Record, path: Path) -> None:
    """Seed-era binary record, format version 2 (u64 target ids), one task per record."""
    with atomic_open(path, "wb") as f:
        f.write(b"damon_recfmt_ver" + struct.pack("<i", 2))
        region = np.dtype([("start", "<u8"), ("end", "<u8"), ("nr_accesses", "<u4")])
        for chunk in record.chunks():
            for i in range(chunk.n_snapshots):
                lo, hi = int(chunk.offsets[i]), int(chunk.offsets[i + 1])
                end_ns = int(chunk.end_ns[i])
                key = record.info.targets[int(chunk.target[i])]
                f.write(
                    struct.pack(
                        "<qqIQI",
                        end_ns // 1_000_000_000,
                        end_ns % 1_000_000_000,
                        1,
                        key.target_id,
                        hi - lo,
                    )
                )
                rows = np.zeros(hi - lo, dtype=region)
                rows["start"] = chunk.start[lo:hi]
                rows["end"] = chunk.end[lo:hi]
                rows["nr_accesses"] = chunk.nr_accesses[lo:hi]
                f.write(rows.tobytes())


def write_parquet_record(record: Record, path: Path) -> None:
    from damon_eval.records.parquet import write_parquet

    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write_parquet(
            Path(tmp),
            record.chunks(),
            list(record.info.targets),
            record.info.target_label,
            record.info.event,
            record.info.intervals,
        )
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def export_record(record: Record, path: Path, format: str) -> None:
    """Write ``record`` to ``path`` in ``format`` (one of :data:`EXPORT_FORMATS`)."""
    path = Path(path)
    if format == "perf_script":
        write_perf_script(record, path)
    elif format == "tracefs":
        write_tracefs(record, path)
    elif format in ("json", "json_compressed"):
        write_json(record, path, compressed=format == "json_compressed")
    elif format == "damon_data":
        write_damon_data(record, path)
    elif format == "parquet":
        write_parquet_record(record, path)
    else:
        raise ConfigError(f"unknown export format {format!r} (valid: {', '.join(EXPORT_FORMATS)})")
