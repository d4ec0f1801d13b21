"""Record file formats: detection and streaming readers.

Every reader is an iterable of :class:`SnapshotChunk` plus what it learned
(targets, warnings, truncation) once iterated.  Supported formats:

``perf_script`` / ``tracefs``
    DAMON trace text (see :mod:`damon_eval.records.textparse`), read in blocks.
``damon_data``
    The seed-era binary record: optional 16-byte magic ``damon_recfmt_ver`` and
    an int32 version (no magic means version 0), then records of
    ``s64 sec, s64 nsec, u32 nr_tasks`` and per task a target id (int32 in
    version 1, u64 otherwise), ``u32 nr_regions`` and per region
    ``u64 start, u64 end, u32 nr_accesses``; little-endian, packed, no age.
``json`` / ``json_compressed``
    damo's list of ``DamonRecord`` objects, plain or zlib-compressed.  A JSON
    document cannot be streamed without a streaming JSON parser, so these are
    loaded whole (like damo does); use perf_script or parquet for huge records.
``parquet``
    The harness's own columnar cache (:mod:`damon_eval.records.parquet`).

Truncation: a file whose end was cut off (a recording still being copied)
has an incomplete last snapshot.  By default that is a
:class:`RecordFormatError` that says how many complete snapshots precede the
cut; with ``allow_partial=True`` the complete snapshots are used and a warning
says where the file was cut.  JSON cannot be partially used.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from damon_eval.errors import RecordFormatError
from damon_eval.records import damo_text
from damon_eval.records.assemble import SnapshotAssembler
from damon_eval.records.model import (
    ADDR_DTYPE,
    AGE_UNKNOWN,
    COUNT_DTYPE,
    END_DTYPE,
    EVENT_AGGREGATED,
    EVENT_BEFORE_APPLY,
    FORMATS,
    START_UNKNOWN,
    TARGET_DTYPE,
    Intervals,
    SnapshotChunk,
    TargetKey,
)
from damon_eval.records.textparse import PAD, detect_event, parse_block

TEXT_BLOCK_BYTES = 4 << 20
_TEXT_PAD = bytes(PAD)
BINARY_BLOCK_BYTES = 4 << 20
CHUNK_REGIONS = 1 << 20
BINARY_MAGIC = b"damon_recfmt_ver"
PARQUET_MAGIC = b"PAR1"
_REGION_DTYPE = np.dtype([("start", "<u8"), ("end", "<u8"), ("nr_accesses", "<u4")])
_MAX_TASKS = 1 << 16
_MAX_REGIONS = 1 << 26


def detect_format(path: Path) -> str:
    """Guess the format of ``path`` from its first bytes (see the module docstring)."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            head = f.read(1 << 16)
    except OSError as exc:
        raise RecordFormatError(f"record {path}: cannot read ({exc.strerror})") from None
    if not head:
        raise RecordFormatError(f"record {path}: the file is empty")
    if head.startswith(BINARY_MAGIC):
        return "damon_data"
    if head.startswith(PARQUET_MAGIC):
        return "parquet"
    if len(head) >= 2 and head[0] == 0x78 and (head[0] * 256 + head[1]) % 31 == 0:
        return "json_compressed"
    stripped = head.lstrip()
    if stripped[:1] in (b"[", b"{"):
        return "json"
    event_pos = head.find(b": damon:")
    if event_pos >= 0 and detect_event(head) is not None:
        return "perf_script"
    if detect_event(head) is not None:
        return "tracefs"
    if _plausible_binary_v0(head):
        return "damon_data"
    if _looks_like_text(head):
        raise RecordFormatError(
            f"record {path}: text without damon_aggregated or damos_before_apply events "
            "in its first 64 KiB (expected perf script or tracefs output of DAMON tracepoints)"
        )
    raise RecordFormatError(f"record {path}: unknown format (valid: {', '.join(FORMATS)})")


def _looks_like_text(head: bytes) -> bool:
    sample = head[:4096]
    return all(b in b"\t\n\r" or 32 <= b < 127 for b in sample)


def _plausible_binary_v0(head: bytes) -> bool:
    if len(head) < 16 + 4 + 8 + 4:
        return False
    sec, nsec, nr_tasks = struct.unpack_from("<qqI", head, 0)
    if sec < 0 or not 0 <= nsec < 1_000_000_000 or not 0 < nr_tasks <= _MAX_TASKS:
        return False
    (nr_regions,) = struct.unpack_from("<I", head, 28)
    return 0 < nr_regions <= _MAX_REGIONS


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


class TextReader(RecordReader):
    """perf script / tracefs text, parsed block by block."""

    def __init__(
        self,
        path: Path,
        *,
        allow_partial: bool = False,
        event: str | None = None,
        format: str = "perf_script",
    ):
        super().__init__(path, allow_partial=allow_partial)
        if event not in (None, EVENT_AGGREGATED, EVENT_BEFORE_APPLY):
            raise RecordFormatError(
                f"unknown event {event!r} (valid: {EVENT_AGGREGATED}, {EVENT_BEFORE_APPLY})"
            )
        self.requested_event = event
        self.format = format

    def _chunks(self) -> Iterator[SnapshotChunk]:
        source = str(self.path)
        assembler: SnapshotAssembler | None = None
        other_lines = 0
        n_events = 0
        line_no = 1
        carry = b""
        with self.path.open("rb") as f:
            while True:
                block = f.read(TEXT_BLOCK_BYTES)
                if not block:
                    break
                cut = block.rfind(b"\n")
                if cut < 0:
                    carry += block
                    continue
                # One copy: the carried partial line, the block's complete lines, padding.
                complete = b"".join((carry, memoryview(block)[: cut + 1], _TEXT_PAD))
                carry = block[cut + 1 :]
                if assembler is None:
                    self.event = self.requested_event or detect_event(complete) or EVENT_AGGREGATED
                    assembler = SnapshotAssembler(self.event, source)
                events = parse_block(
                    complete, first_line_no=line_no, event=self.event, source=source, padded=True
                )
                line_no += events.n_lines
                other_lines += events.other_event_lines
                n_events += events.size
                chunk = assembler.feed(events)
                self.targets = assembler.targets
                if chunk.n_snapshots:
                    yield chunk
        if assembler is None:
            assembler = SnapshotAssembler(self.requested_event or EVENT_AGGREGATED, source)
        last, n_truncated, first_truncated_line = assembler.finish(cut_line=bool(carry.strip()))
        self.targets = assembler.targets
        self.warnings.extend(assembler.warnings)
        if n_events == 0 and not carry.strip():
            raise RecordFormatError(
                f"record {self.path}: no {self.event} events found "
                "(expected perf script or tracefs lines of DAMON tracepoints)"
            )
        if last.n_snapshots:
            yield last
        complete = self.n_snapshots + last.n_snapshots
        if carry.strip():
            where = f"line {first_truncated_line or line_no} (the last line has no newline)"
            self._truncated(where, complete)
        elif n_truncated:
            self._truncated(f"line {first_truncated_line} (last snapshot incomplete)", complete)
        if other_lines:
            other = EVENT_BEFORE_APPLY if self.event == EVENT_AGGREGATED else EVENT_AGGREGATED
            self.warnings.append(
                f"record {self.path}: ignored {other_lines} {other} lines "
                f"(this report reads {self.event})"
            )


class _ByteSource:
    """Sequential reads from a file with a sliding buffer (bounded memory)."""

    def __init__(self, f, start: int):
        self.f = f
        self.buf = b""
        self.pos = 0  # position in buf
        self.base = start  # file offset of buf[0]
        f.seek(start)

    @property
    def offset(self) -> int:
        return self.base + self.pos

    def need(self, n: int) -> bool:
        """Make ``n`` bytes available at ``pos``; False at end of file."""
        while len(self.buf) - self.pos < n:
            more = self.f.read(max(BINARY_BLOCK_BYTES, n))
            if not more:
                return False
            self.base += self.pos
            self.buf = self.buf[self.pos :] + more
            self.pos = 0
        return True

    def at_end(self) -> bool:
        return not self.need(1)


class BinaryReader(RecordReader):
    """The seed-era ``damon.data`` binary record."""

    format = "damon_data"

    def _chunks(self) -> Iterator[SnapshotChunk]:
        self.target_label = "pid"
        index: dict[int, int] = {}
        last_end: dict[int, int] = {}
        with self.path.open("rb") as f:
            head = f.read(20)
            if head[:16] == BINARY_MAGIC:
                if len(head) < 20:
                    self._truncated("byte 16 (in the format version)", 0)
                    return
                (version,) = struct.unpack("<i", head[16:20])
                if version not in (1, 2):
                    raise RecordFormatError(
                        f"record {self.path}: byte 16: unsupported damon.data format version "
                        f"{version} (valid: 1, 2, or no magic for version 0)"
                    )
                start = 20
            else:
                version, start = 0, 0
            tid_format = "<i" if version == 1 else "<Q"
            tid_size = struct.calcsize(tid_format)
            src = _ByteSource(f, start)
            pending: list[tuple[int, int, int, np.ndarray]] = []
            pending_regions = 0
            complete = 0
            while not src.at_end():
                record_offset = src.offset
                snapshots, ok = self._read_one(src, tid_format, tid_size, index, record_offset)
                if not ok:
                    self._truncated(f"byte {record_offset}", complete)
                    break
                for end_ns, tidx, regions in snapshots:
                    start_ns = last_end.get(tidx, int(START_UNKNOWN))
                    last_end[tidx] = end_ns
                    pending.append((end_ns, start_ns, tidx, regions))
                    pending_regions += regions.size
                    complete += 1
                if pending_regions >= CHUNK_REGIONS or len(pending) >= 65536:
                    yield _chunk_from_pending(pending)
                    pending, pending_regions = [], 0
            if pending:
                yield _chunk_from_pending(pending)
        if complete == 0 and not self.warnings:
            raise RecordFormatError(f"record {self.path}: no snapshots in the file")

    def _read_one(self, src, tid_format, tid_size, index, record_offset):
        if not src.need(20):
            return [], False
        sec, nsec, nr_tasks = struct.unpack_from("<qqI", src.buf, src.pos)
        if sec < 0 or not 0 <= nsec < 1_000_000_000:
            raise RecordFormatError(
                f"record {self.path}: byte {record_offset}: implausible timestamp "
                f"{sec} s {nsec} ns (nanoseconds must be 0..999999999)"
            )
        if nr_tasks > _MAX_TASKS:
            raise RecordFormatError(
                f"record {self.path}: byte {record_offset + 16}: implausible nr_tasks "
                f"{nr_tasks} (at most {_MAX_TASKS})"
            )
        src.pos += 20
        end_ns = sec * 1_000_000_000 + nsec
        out = []
        for _ in range(nr_tasks):
            if not src.need(tid_size + 4):
                return [], False
            (tid,) = struct.unpack_from(tid_format, src.buf, src.pos)
            (nr_regions,) = struct.unpack_from("<I", src.buf, src.pos + tid_size)
            if nr_regions > _MAX_REGIONS:
                raise RecordFormatError(
                    f"record {self.path}: byte {src.offset + tid_size}: implausible "
                    f"nr_regions {nr_regions} (at most {_MAX_REGIONS})"
                )
            src.pos += tid_size + 4
            nbytes = nr_regions * _REGION_DTYPE.itemsize
            if not src.need(nbytes):
                return [], False
            regions = np.frombuffer(src.buf, dtype=_REGION_DTYPE, count=nr_regions, offset=src.pos)
            bad = np.flatnonzero(regions["start"] > regions["end"])
            if bad.size:
                raise RecordFormatError(
                    f"record {self.path}: byte {src.offset + int(bad[0]) * 20}: region start "
                    f"{int(regions['start'][bad[0]])} is above its end "
                    f"{int(regions['end'][bad[0]])}"
                )
            src.pos += nbytes
            key = TargetKey(int(tid))
            if key.target_id not in index:
                index[key.target_id] = len(self.targets)
                self.targets.append(key)
            out.append((end_ns, index[key.target_id], regions.copy()))
        return out, True


def _chunk_from_pending(pending: list[tuple[int, int, int, np.ndarray]]) -> SnapshotChunk:
    counts = np.array([p[3].size for p in pending], dtype=np.int64)
    offsets = np.zeros(counts.size + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    regions = np.concatenate([p[3] for p in pending]) if offsets[-1] else np.zeros(0, _REGION_DTYPE)
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


class JsonReader(RecordReader):
    """damo's JSON record (a list of DamonRecord objects), plain or zlib-compressed."""

    def __init__(self, path: Path, *, allow_partial: bool = False, compressed: bool = False):
        super().__init__(path, allow_partial=allow_partial)
        self.compressed = compressed
        self.format = "json_compressed" if compressed else "json"

    def _load(self) -> object:
        raw = self.path.read_bytes()
        if self.compressed:
            try:
                raw = zlib.decompress(raw)
            except zlib.error as exc:
                raise RecordFormatError(
                    f"record {self.path}: zlib stream is corrupt or truncated ({exc}); "
                    "a compressed JSON record cannot be partially used"
                ) from None
        try:
            return json.loads(raw)
        except UnicodeDecodeError as exc:
            raise RecordFormatError(
                f"record {self.path}: byte {exc.start}: not UTF-8 JSON text"
            ) from None
        except json.JSONDecodeError as exc:
            raise RecordFormatError(
                f"record {self.path}: line {exc.lineno} column {exc.colno}: invalid JSON "
                f"({exc.msg}); a JSON record cannot be partially used"
            ) from None

    def _chunks(self) -> Iterator[SnapshotChunk]:
        doc = self._load()
        if not isinstance(doc, list):
            raise RecordFormatError(
                f"record {self.path}: top level must be a list of damo DamonRecord objects, "
                f"got {type(doc).__name__}"
            )
        pending: list[tuple[int, int, int, np.ndarray]] = []
        ages: list[np.ndarray] = []
        index: dict[TargetKey, int] = {}
        for r, rec in enumerate(doc):
            where = f"record {self.path}: [{r}]"
            if not isinstance(rec, dict) or "snapshots" not in rec or "target_id" not in rec:
                raise RecordFormatError(f"{where}: expected an object with target_id, snapshots")
            scheme = rec.get("scheme_idx")
            key = TargetKey(
                damo_text.to_int(rec["target_id"], f"{where}.target_id"),
                None if scheme is None else damo_text.to_int(scheme, f"{where}.scheme_idx"),
                None if scheme is None else int(rec.get("context_idx") or 0),
            )
            if key not in index:
                index[key] = len(self.targets)
                self.targets.append(key)
            intervals = self._intervals(rec.get("intervals"), f"{where}.intervals")
            if intervals is not None:
                self.intervals = intervals
            tidx = index[key]
            snapshots = rec["snapshots"]
            if not isinstance(snapshots, list):
                raise RecordFormatError(f"{where}.snapshots: expected a list")
            for s, snap in enumerate(snapshots):
                swhere = f"{where}.snapshots[{s}]"
                if not isinstance(snap, dict) or "regions" not in snap or "end_time" not in snap:
                    raise RecordFormatError(f"{swhere}: expected start_time, end_time, regions")
                end_ns = damo_text.to_ns(snap["end_time"], f"{swhere}.end_time")
                start = snap.get("start_time")
                start_ns = (
                    int(START_UNKNOWN)
                    if start is None
                    else damo_text.to_ns(start, f"{swhere}.start_time")
                )
                regions, age = self._regions(snap["regions"], swhere, intervals)
                pending.append((end_ns, start_ns, tidx, regions))
                ages.append(age)
        if not pending:
            raise RecordFormatError(f"record {self.path}: no snapshots in the file")
        order = sorted(range(len(pending)), key=lambda i: pending[i][0])
        pending = [pending[i] for i in order]
        ages = [ages[i] for i in order]
        chunk = _chunk_from_pending(pending)
        age = np.concatenate(ages) if chunk.n_regions else chunk.age
        yield SnapshotChunk(
            end_ns=chunk.end_ns,
            start_ns=chunk.start_ns,
            target=chunk.target,
            offsets=chunk.offsets,
            start=chunk.start,
            end=chunk.end,
            nr_accesses=chunk.nr_accesses,
            age=age.astype(COUNT_DTYPE),
        )

    @staticmethod
    def _intervals(kv: object, where: str) -> Intervals | None:
        if kv is None:
            return None
        if not isinstance(kv, dict):
            raise RecordFormatError(f"{where}: expected an object")
        try:
            return Intervals(
                sample_us=damo_text.to_us(kv.get("sample_us", kv.get("sample")), where),
                aggr_us=damo_text.to_us(kv.get("aggr_us", kv.get("aggr")), where),
                update_us=damo_text.to_us(
                    kv.get("ops_update_us", kv.get("update_us", kv.get("update", 0))), where
                ),
            )
        except RecordFormatError:
            raise
        except Exception:
            raise RecordFormatError(
                f"{where}: expected sample_us, aggr_us, ops_update_us"
            ) from None

    @staticmethod
    def _regions(
        regions: object, where: str, intervals: Intervals | None
    ) -> tuple[np.ndarray, np.ndarray]:
        if not isinstance(regions, list):
            raise RecordFormatError(f"{where}.regions: expected a list")
        out = np.zeros(len(regions), dtype=_REGION_DTYPE)
        age = np.full(len(regions), AGE_UNKNOWN, dtype=np.uint32)
        for i, reg in enumerate(regions):
            rwhere = f"{where}.regions[{i}]"
            if not isinstance(reg, dict) or "start" not in reg or "end" not in reg:
                raise RecordFormatError(f"{rwhere}: expected an object with start and end")
            start = damo_text.to_bytes(reg["start"], f"{rwhere}.start")
            end = damo_text.to_bytes(reg["end"], f"{rwhere}.end")
            if start > end:
                raise RecordFormatError(f"{rwhere}: start {start} is above end {end}")
            out[i] = (start, end, _json_nr_accesses(reg.get("nr_accesses"), rwhere, intervals))
            a = _json_age(reg.get("age"), rwhere, intervals)
            if a is not None:
                age[i] = a
        return out, age


def _json_nr_accesses(kv: object, where: str, intervals: Intervals | None) -> int:
    if kv is None:
        raise RecordFormatError(f"{where}: no nr_accesses")
    if not isinstance(kv, dict):
        return damo_text.to_int(kv, f"{where}.nr_accesses")
    if kv.get("samples") is not None:
        return damo_text.to_int(kv["samples"], f"{where}.nr_accesses.samples")
    if kv.get("percent") is not None and intervals is not None:
        # damo's DamonNrAccesses.add_unset_unit()
        percent = float(str(kv["percent"]).rstrip("%").strip())
        return int(percent * (intervals.aggr_us / intervals.sample_us) / 100)
    raise RecordFormatError(f"{where}.nr_accesses: neither samples nor percent with intervals")


def _json_age(kv: object, where: str, intervals: Intervals | None) -> int | None:
    if kv is None:
        return None
    if not isinstance(kv, dict):
        return damo_text.to_int(kv, f"{where}.age")
    if kv.get("aggr_intervals") is not None:
        return damo_text.to_int(kv["aggr_intervals"], f"{where}.age.aggr_intervals")
    if kv.get("usec") is not None and intervals is not None:
        return int(damo_text.to_us(kv["usec"], f"{where}.age.usec") / intervals.aggr_us)
    return None


def open_reader(
    path: Path,
    *,
    format: str | None = None,
    allow_partial: bool = False,
    event: str | None = None,
) -> RecordReader:
    """A reader for ``path``; ``format`` None means auto-detection."""
    path = Path(path)
    if not path.is_file():
        raise RecordFormatError(f"record {path}: no such file")
    fmt = format or detect_format(path)
    if fmt not in FORMATS:
        raise RecordFormatError(f"unknown record format {fmt!r} (valid: {', '.join(FORMATS)})")
    if fmt in ("perf_script", "tracefs"):
        return TextReader(path, allow_partial=allow_partial, event=event, format=fmt)
    if fmt == "damon_data":
        return BinaryReader(path, allow_partial=allow_partial)
    if fmt in ("json", "json_compressed"):
        return JsonReader(path, allow_partial=allow_partial, compressed=fmt == "json_compressed")
    from damon_eval.records.parquet import ParquetReader

    return ParquetReader(path, allow_partial=allow_partial)
