"""The seed-era ``damon.data`` binary record (layout: :mod:`damon_eval.records.formats`)."""

from __future__ import annotations

import struct
from collections.abc import Iterator

import numpy as np

from damon_eval.errors import RecordFormatError
from damon_eval.records.model import (
    START_UNKNOWN,
    SnapshotChunk,
    TargetKey,
)
from damon_eval.records.reader import REGION_DTYPE, RecordReader, chunk_from_pending

BINARY_BLOCK_BYTES = 4 << 20
CHUNK_REGIONS = 1 << 20
BINARY_MAGIC = b"damon_recfmt_ver"
_MAX_TASKS = 1 << 16
_MAX_REGIONS = 1 << 26


def plausible_binary_v0(head: bytes) -> bool:
    if len(head) < 16 + 4 + 8 + 4:
        return False
    sec, nsec, nr_tasks = struct.unpack_from("<qqI", head, 0)
    if sec < 0 or not 0 <= nsec < 1_000_000_000 or not 0 < nr_tasks <= _MAX_TASKS:
        return False
    (nr_regions,) = struct.unpack_from("<I", head, 28)
    return 0 < nr_regions <= _MAX_REGIONS


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
                    yield chunk_from_pending(pending)
                    pending, pending_regions = [], 0
            if pending:
                yield chunk_from_pending(pending)
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
            nbytes = nr_regions * REGION_DTYPE.itemsize
            if not src.need(nbytes):
                return [], False
            regions = np.frombuffer(src.buf, dtype=REGION_DTYPE, count=nr_regions, offset=src.pos)
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
