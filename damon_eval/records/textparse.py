"""Vectorised parser for DAMON trace text (``perf script`` and tracefs forms).

Accepted line forms (one event per line)::

    kdamond.0   516 [001]    41.751439: damon:damon_aggregated: target_id=0 nr_regions=18 A-B: 8 0
    kdamond.0-516 [001] ..... 41.751439: damon_aggregated: target_id=0 nr_regions=18 A-B: 8 0
    kdamond.0-516 [001] 41.751439: damon_aggregated:     target_id=0 nr_regions=18 A-B: 8 0
    ... damon:damos_before_apply: ctx_idx=0 scheme_idx=0 target_idx=0 nr_regions=11 A-B: 0 136

The trailing ``age`` of ``damon_aggregated`` may be absent (kernels before
late 2021).  The flags column of tracefs/trace-cmd output is optional:
trace-cmd 3.2 dropped it, which made damo's fixed-column parser silently
produce empty records.  This parser anchors on the first ``": "`` of a line
(the one after the timestamp) instead of on column positions.

There is no per-line Python code: a block of text becomes a numpy byte array,
every run of decimal digits is converted at once, and the fields of each event
line are picked by run index and checked against the expected separators.
Lines that are not DAMON region events (headers, comments, other events) are
skipped; an event line that does not parse raises :class:`RecordFormatError`
naming its line number.
"""

from __future__ import annotations

import numpy as np

from damon_eval.errors import RecordFormatError
from damon_eval.records import text_exact, text_fast
from damon_eval.records.model import EVENT_AGGREGATED
from damon_eval.records.text_events import (
    COLON,
    EVENT_PATTERNS,
    NL,
    PAD,
    SPACE,
    ParsedEvents,
    detect_event,
    empty_events,
    match_words,
    word_matcher,
    word_view,
)

__all__ = [
    "PAD",
    "LineError",
    "ParsedEvents",
    "detect_event",
    "locate_error",
    "parse_block",
    "parse_local",
]

LineError = text_exact.LineError


def parse_block(
    buf: bytes, *, first_line_no: int, event: str, source: str, padded: bool = False
) -> ParsedEvents:
    """Parse the complete lines of ``buf`` (which must end with a newline).

    ``first_line_no`` is the 1-based file line number of the first line,
    ``event`` the DAMON event to keep and ``source`` names the file in errors.
    ``padded``: ``buf`` already ends with :data:`PAD` zero bytes after the last
    newline (saves a copy of the block).
    """
    if not padded:
        buf = buf + bytes(PAD)
    try:
        events = parse_local(buf, event)
    except LineError as exc:
        raise locate_error(
            buf, exc, first_line_no=first_line_no, event=event, source=source
        ) from None
    events.line_no += first_line_no
    return events


def locate_error(
    buf: bytes, exc: LineError, *, first_line_no: int, event: str, source: str
) -> RecordFormatError:
    """The error of a bad line of ``buf``, with its line number in the file."""
    lines = buf.split(b"\n")
    text = lines[exc.local_line].decode("utf-8", "replace")[:200]
    return RecordFormatError(
        f"record {source}: line {first_line_no + exc.local_line}: malformed "
        f"{event} event ({exc.reason}): {text!r}"
    )


def parse_local(buf: bytes, event: str) -> ParsedEvents:
    """:func:`parse_block` of a padded ``buf`` with 0-based line numbers, raising
    :class:`LineError`: what a worker thread runs before the file position is known."""
    if len(buf) <= PAD:
        return empty_events()
    # Zero padding keeps the fixed-width windows of the last line inside the array.
    a = np.frombuffer(buf, dtype=np.uint8)
    words = word_view(a)
    line_end = np.flatnonzero(a == NL)

    # The first ": " of each line ends the timestamp.  (Colons first, then the
    # byte after each: a contiguous compare, 3x faster than one over byte pairs.)
    colon = np.flatnonzero(a == COLON)
    colon = colon[a[colon + 1] == SPACE]  # the padding keeps colon + 1 in range
    if colon.size == 0:
        return _with_lines(empty_events(), line_end.size)
    line_start = np.empty_like(line_end)
    line_start[0] = 0
    line_start[1:] = line_end[:-1] + 1
    first = np.searchsorted(colon, line_start)
    has = first < colon.size
    has[has] = colon[first[has]] < line_end[has]
    ts_line = np.flatnonzero(has)
    ts_colon = colon[first[ts_line]]

    keep = np.zeros(ts_colon.size, dtype=bool)
    other = np.zeros(ts_colon.size, dtype=bool)
    field_start = np.zeros(ts_colon.size, dtype=np.int64)
    # Most files use one spelling: test each pattern only on the lines still unmatched.
    todo = np.arange(ts_colon.size)
    for pattern, pattern_event in EVENT_PATTERNS:
        if todo.size == 0:
            break
        hit = todo[match_words(words, ts_colon[todo] + 2, word_matcher(pattern))]
        if pattern_event == event:
            keep[hit] = True
            field_start[hit] = ts_colon[hit] + 2 + len(pattern)
        else:
            other[hit] = True
        if hit.size:
            todo = todo[~(keep[todo] | other[todo])]
    n_other = int(other.sum())
    if not keep.any():
        return _with_lines(empty_events(n_other), line_end.size)

    ts_colon = ts_colon[keep]
    line = ts_line[keep]
    field_start = field_start[keep]

    fields = text_fast.parse_fast(buf, a, words, line_end, ts_colon, line, field_start, event)
    if fields is None:
        fields = text_exact.parse_exact(a, line_end, ts_colon, line, field_start, event)
    return _with_lines(_events(fields, line, event, n_other), line_end.size)


def _with_lines(events: ParsedEvents, n_lines: int) -> ParsedEvents:
    events.n_lines = n_lines
    return events


def _events(
    fields: dict[str, np.ndarray], line: np.ndarray, event: str, n_other: int
) -> ParsedEvents:
    if event == EVENT_AGGREGATED:
        scheme_idx = np.full(line.size, -1, dtype=np.int64)
        context_idx = scheme_idx
    else:
        scheme_idx = fields["scheme_idx"].astype(np.int64)
        context_idx = fields["context_idx"].astype(np.int64)
    return ParsedEvents(
        line_no=line.astype(np.int64),  # 0-based in the block
        time_ns=fields["time_ns"],
        target_id=fields["target_id"],
        scheme_idx=scheme_idx,
        context_idx=context_idx,
        nr_regions=fields["nr_regions"].astype(np.int64),
        start=fields["start"],
        end=fields["end"],
        nr_accesses=fields["nr_accesses"].astype(np.uint32),
        age=fields["age"],
        other_event_lines=n_other,
    )
