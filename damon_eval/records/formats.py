"""Record file formats: detection and streaming readers.

Every reader (:class:`~damon_eval.records.reader.RecordReader`) is an iterable
of :class:`SnapshotChunk` plus what it learned (targets, warnings, truncation)
once iterated.  Supported formats, one reader module each:

``perf_script`` / ``tracefs``
    DAMON trace text (:mod:`~damon_eval.records.text_reader`, parsed by
    :mod:`~damon_eval.records.textparse`), read in blocks.
``damon_data`` (:mod:`~damon_eval.records.binary_reader`)
    The seed-era binary record: optional 16-byte magic ``damon_recfmt_ver`` and
    an int32 version (no magic means version 0), then records of
    ``s64 sec, s64 nsec, u32 nr_tasks`` and per task a target id (int32 in
    version 1, u64 otherwise), ``u32 nr_regions`` and per region
    ``u64 start, u64 end, u32 nr_accesses``; little-endian, packed, no age.
``json`` / ``json_compressed`` (:mod:`~damon_eval.records.json_reader`)
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

from pathlib import Path

from damon_eval.errors import RecordFormatError
from damon_eval.records.binary_reader import (
    BINARY_MAGIC,
    BinaryReader,
    plausible_binary_v0,
)
from damon_eval.records.json_reader import JsonReader
from damon_eval.records.model import FORMATS
from damon_eval.records.reader import RecordReader
from damon_eval.records.text_reader import TextReader
from damon_eval.records.textparse import detect_event

PARQUET_MAGIC = b"PAR1"


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
    if plausible_binary_v0(head):
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
