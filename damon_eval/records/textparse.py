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

from dataclasses import dataclass

import numpy as np

from damon_eval.errors import RecordFormatError
from damon_eval.records.model import AGE_UNKNOWN, EVENT_AGGREGATED, EVENT_BEFORE_APPLY

_NL, _SPACE, _COLON, _DOT, _DASH, _CR = 10, 32, 58, 46, 45, 13

# Event name as it follows the timestamp's ": ", with and without perf's "damon:".
_EVENT_PATTERNS: tuple[tuple[bytes, str], ...] = (
    (b"damon:damon_aggregated: ", EVENT_AGGREGATED),
    (b"damon_aggregated: ", EVENT_AGGREGATED),
    (b"damon:damos_before_apply: ", EVENT_BEFORE_APPLY),
    (b"damos_before_apply: ", EVENT_BEFORE_APPLY),
)
PAD = 64

# Field names preceding the numeric runs, per event; None = a plain separator.
_AGG_NAMES = (b"target_id=", b"nr_regions=")
_APPLY_NAMES = (b"ctx_idx=", b"scheme_idx=", b"target_idx=", b"nr_regions=")

_POW10 = np.array([10**k for k in range(20)], dtype=np.uint64)
_U32_MAX = 0xFFFFFFFF


@dataclass(slots=True)
class ParsedEvents:
    """Region events of one text block, in file order."""

    line_no: np.ndarray  # int64, 1-based line number in the file
    time_ns: np.ndarray  # int64
    target_id: np.ndarray  # uint64 (target_idx for damos_before_apply)
    scheme_idx: np.ndarray  # int64, -1 for damon_aggregated
    context_idx: np.ndarray  # int64, -1 for damon_aggregated
    nr_regions: np.ndarray  # int64
    start: np.ndarray  # uint64
    end: np.ndarray  # uint64
    nr_accesses: np.ndarray  # uint32
    age: np.ndarray  # uint32
    other_event_lines: int  # lines of the DAMON event kind that was not asked for
    n_lines: int = 0  # lines in the parsed block

    @property
    def size(self) -> int:
        return int(self.time_ns.size)

    def take(self, idx: np.ndarray) -> ParsedEvents:
        return ParsedEvents(
            line_no=self.line_no[idx],
            time_ns=self.time_ns[idx],
            target_id=self.target_id[idx],
            scheme_idx=self.scheme_idx[idx],
            context_idx=self.context_idx[idx],
            nr_regions=self.nr_regions[idx],
            start=self.start[idx],
            end=self.end[idx],
            nr_accesses=self.nr_accesses[idx],
            age=self.age[idx],
            other_event_lines=0,
        )

    @staticmethod
    def concat(parts: list[ParsedEvents]) -> ParsedEvents:
        if len(parts) == 1:
            return parts[0]
        return ParsedEvents(
            *(
                np.concatenate([getattr(p, name) for p in parts])
                for name in (
                    "line_no",
                    "time_ns",
                    "target_id",
                    "scheme_idx",
                    "context_idx",
                    "nr_regions",
                    "start",
                    "end",
                    "nr_accesses",
                    "age",
                )
            ),
            other_event_lines=sum(p.other_event_lines for p in parts),
        )


def detect_event(buf: bytes) -> str | None:
    """The first DAMON region event kind that occurs in ``buf``, if any."""
    best: tuple[int, str] | None = None
    for pattern, event in _EVENT_PATTERNS:
        pos = buf.find(b": " + pattern)
        if pos >= 0 and (best is None or pos < best[0]):
            best = (pos, event)
    return best[1] if best else None


def _windows(a: np.ndarray, anchor: np.ndarray, offset: int, width: int) -> np.ndarray:
    """``a[anchor + offset : anchor + offset + width]`` for every anchor, as rows.

    Windows reaching past either end of ``a`` are shifted inside it; callers
    only use them for checks that then fail (and fall back) or are masked.
    """
    if a.size < width:
        a = np.concatenate((a, np.zeros(width - a.size, dtype=a.dtype)))
    view = np.lib.stride_tricks.sliding_window_view(a, width)
    first = np.clip(anchor + offset, 0, a.size - width)
    return view[first]


def _matches(a: np.ndarray, anchor: np.ndarray, offset: int, text: bytes) -> np.ndarray:
    pattern = np.frombuffer(text, dtype=np.uint8)
    return (_windows(a, anchor, offset, len(text)) == pattern).all(axis=1)


def _digit_runs(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Start position, end position (exclusive) and uint64 value of every digit run.

    Values are summed modulo 2**64, which is exact for every number below
    2**64; longer or larger runs are flagged by the caller from their length.
    """
    digit_pos = np.flatnonzero((a - np.uint8(48)) < 10)
    if digit_pos.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0, dtype=np.uint64)
    breaks = np.flatnonzero(np.diff(digit_pos) != 1) + 1
    first = np.concatenate(([0], breaks))
    last = np.concatenate((breaks - 1, [digit_pos.size - 1]))
    run_start = digit_pos[first]
    run_end = digit_pos[last] + 1
    exponent = np.repeat(run_end - 1, last - first + 1) - digit_pos
    np.minimum(exponent, 19, out=exponent)
    digits = (a[digit_pos] - np.uint8(48)).astype(np.uint64)
    digits *= _POW10[exponent]
    values = np.add.reduceat(digits, first)
    return run_start, run_end, values


class _LineError(Exception):
    def __init__(self, local_line: int, reason: str):
        super().__init__(reason)
        self.local_line = local_line
        self.reason = reason


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
        return _parse_block(buf, first_line_no, event)
    except _LineError as exc:
        lines = buf.split(b"\n")
        text = lines[exc.local_line].decode("utf-8", "replace")[:200]
        raise RecordFormatError(
            f"record {source}: line {first_line_no + exc.local_line}: malformed "
            f"{event} event ({exc.reason}): {text!r}"
        ) from None


def _empty_events(other: int = 0) -> ParsedEvents:
    z64 = np.zeros(0, dtype=np.int64)
    zu64 = np.zeros(0, dtype=np.uint64)
    zu32 = np.zeros(0, dtype=np.uint32)
    return ParsedEvents(z64, z64, zu64, z64, z64, z64, zu64, zu64, zu32, zu32, other)


def _parse_block(buf: bytes, first_line_no: int, event: str) -> ParsedEvents:
    if len(buf) <= PAD:
        return _empty_events()
    # Zero padding keeps the fixed-width windows of the last line inside the array.
    a = np.frombuffer(buf, dtype=np.uint8)
    words = _word_view(a)
    line_end = np.flatnonzero(a == _NL)

    # The first ": " of each line ends the timestamp.  (Colons first, then the
    # byte after each: a contiguous compare, 3x faster than one over byte pairs.)
    colon = np.flatnonzero(a == _COLON)
    colon = colon[a[colon + 1] == _SPACE]  # the padding keeps colon + 1 in range
    if colon.size == 0:
        return _with_lines(_empty_events(), line_end.size)
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
    for pattern, pattern_event in _EVENT_PATTERNS:
        if todo.size == 0:
            break
        hit = todo[_match_words(words, ts_colon[todo] + 2, _matcher(pattern))]
        if pattern_event == event:
            keep[hit] = True
            field_start[hit] = ts_colon[hit] + 2 + len(pattern)
        else:
            other[hit] = True
        if hit.size:
            todo = todo[~(keep[todo] | other[todo])]
    n_other = int(other.sum())
    if not keep.any():
        return _with_lines(_empty_events(n_other), line_end.size)

    ts_colon = ts_colon[keep]
    line = ts_line[keep]
    field_start = field_start[keep]

    fast = _parse_fast(buf, a, words, line_end, ts_colon, line, field_start, event)
    if fast is not None:
        return _with_lines(_events(fast, line, first_line_no, event, n_other), line_end.size)
    exact = _parse_exact(a, line_end, ts_colon, line, field_start, event, first_line_no, n_other)
    return _with_lines(exact, line_end.size)


def _with_lines(events: ParsedEvents, n_lines: int) -> ParsedEvents:
    events.n_lines = n_lines
    return events


def _events(
    fields: dict[str, np.ndarray], line: np.ndarray, first_line_no: int, event: str, n_other: int
) -> ParsedEvents:
    if event == EVENT_AGGREGATED:
        scheme_idx = np.full(line.size, -1, dtype=np.int64)
        context_idx = scheme_idx
    else:
        scheme_idx = fields["scheme_idx"].astype(np.int64)
        context_idx = fields["context_idx"].astype(np.int64)
    return ParsedEvents(
        line_no=line.astype(np.int64) + first_line_no,
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


# Kept text of event lines -> numbers separated by single spaces: the dot of the
# timestamp and the dash of start-end separate, names, '=', ':' and blanked
# (zero) bytes vanish.  Any other byte makes numpy's parser stop (fallback).
_FIELD_TABLE = bytes(_SPACE if c in b".-\n" else c for c in range(256))
_FIELD_DELETE = bytes([0]) + bytes(
    c for c in range(256) if chr(c).isascii() and (chr(c).isalpha() or c in b"_=:")
)
_ALL_BYTES = np.uint64(2**64 - 1)
_U64_MAX = np.uint64(2**64 - 1)

# Text before each numeric field of an event line, after the event name.
_AGG_LAYOUT = (b"target_id=", b" nr_regions=", b" ", b"-", b": ", b" ")
_APPLY_LAYOUT = (
    b"ctx_idx=",
    b" scheme_idx=",
    b" target_idx=",
    b" nr_regions=",
    b" ",
    b"-",
    b": ",
    b" ",
)


def _word_view(a: np.ndarray) -> np.ndarray:
    """The little-endian uint64 starting at every byte offset (an unaligned view)."""
    return np.ndarray(shape=(a.size - 7,), dtype="<u8", buffer=a, offset=0, strides=(1,))


_MATCHERS: dict[bytes, tuple[tuple[int, np.uint64, np.uint64], ...]] = {}


def _matcher(text: bytes) -> tuple[tuple[int, np.uint64, np.uint64], ...]:
    """(offset, mask, value) words that together cover ``text``."""
    found = _MATCHERS.get(text)
    if found is None:
        n = len(text)
        if n >= 8:
            offsets = list(range(0, n - 7, 8))
            if offsets[-1] != n - 8:
                offsets.append(n - 8)
            found = tuple(
                (o, _ALL_BYTES, np.uint64(int.from_bytes(text[o : o + 8], "little")))
                for o in offsets
            )
        else:
            found = ((0, np.uint64((1 << (8 * n)) - 1), np.uint64(int.from_bytes(text, "little"))),)
        _MATCHERS[text] = found
    return found


def _match_words(words: np.ndarray, pos: np.ndarray, matcher) -> np.ndarray:
    ok = None
    for offset, mask, value in matcher:
        word = words[pos + offset]
        if mask != _ALL_BYTES:
            word = word & mask
        eq = word == value
        ok = eq if ok is None else ok & eq
    return ok


def _n_digits(values: np.ndarray) -> np.ndarray:
    return 1 + np.searchsorted(_POW10[1:], values, side="right")


def _parse_fast(
    buf: bytes,
    a: np.ndarray,
    words: np.ndarray,
    line_end: np.ndarray,
    ts_colon: np.ndarray,
    line: np.ndarray,
    field_start: np.ndarray,
    event: str,
) -> dict[str, np.ndarray] | None:
    """All fields of the block via one ``np.fromstring``; None if any check fails.

    Everything but the field text of event lines is blanked, so the block's
    numbers are exactly ``k`` per event line (6 or 5 for damon_aggregated with
    and without age, 8 for damos_before_apply).  A line is accepted only if
    its field text is exactly the expected names and separators with those
    numbers' digits between them (every byte accounted for).  Anything else
    (mixed field counts, leading zeros, trailing blanks, numbers of 20+
    digits) falls back to :func:`_parse_exact`, which also names a bad line.
    """
    import warnings

    n = line.size
    n_bytes = a.size  # including the padding
    ts = _timestamp_spans(a, ts_colon)
    if ts is None:
        return None
    ts_start, frac_len = ts
    # Keep only the timestamp and the field text of event lines: a run-length
    # mask of (blank, timestamp, blank, fields) per line and a blank tail.
    runs = np.empty(4 * n + 1, dtype=np.int64)
    this_end = line_end[line]
    runs[0] = ts_start[0]
    runs[1:-1:4] = ts_colon - ts_start
    runs[2:-1:4] = field_start - ts_colon
    runs[3:-1:4] = this_end - field_start
    runs[4::4] = np.append(ts_start[1:], n_bytes) - this_end
    if np.any(runs < 0):
        return None
    pattern = np.tile(np.array([0, 1], dtype=np.uint8), 2 * n + 1)[: 4 * n + 1]
    # Blank into a bytearray so that translate() reads it without a tobytes() copy.
    kept_bytes = bytearray(n_bytes)
    kept = np.frombuffer(kept_bytes, dtype=np.uint8)
    np.multiply(a, np.repeat(pattern, runs), out=kept)  # blanked bytes become 0
    # One space where each blanked run starts, so that numbers stay apart once the
    # zeros, names and colons are deleted: numpy's parser then reads a compact
    # "<sec> <frac> <field> <field> ..." per line (its time is per character).
    run_start = np.cumsum(runs) - runs
    blank_start = run_start[0::2][runs[0::2] > 0]
    kept[blank_start] = _SPACE
    text = bytes(kept_bytes.translate(_FIELD_TABLE, _FIELD_DELETE))  # the short copy
    del kept
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            numbers = np.fromstring(text, dtype=np.uint64, sep=" ")
        except (DeprecationWarning, ValueError):
            return None
    layouts = (_AGG_LAYOUT, _AGG_LAYOUT[:-1]) if event == EVENT_AGGREGATED else (_APPLY_LAYOUT,)
    layout = next((lay for lay in layouts if numbers.size == (len(lay) + 2) * n), None)
    if layout is None:
        return None  # lines with different field counts
    k = len(layout)
    table = numbers.reshape(n, k + 2)
    if np.any(table == _U64_MAX):
        return None  # 20+ digit numbers overflow to this
    values = table[:, 2:]

    # Field names may be padded (trace-cmd prints "damon_aggregated:     target_id=").
    pad = np.zeros(n, dtype=np.int64)
    while True:
        blank = a[field_start + pad] == _SPACE
        if not blank.any():
            break
        pad[blank] += 1
        if pad.max() > 16:
            return None
    pos = field_start + pad
    digits = _n_digits(values)
    for j, prefix in enumerate(layout):
        if not _match_words(words, pos, _matcher(prefix)).all():
            return None
        pos += len(prefix) + digits[:, j]
    if np.any(pos != this_end):
        return None

    sec, frac = table[:, 0], table[:, 1]
    time_ns = (sec * np.uint64(1_000_000_000) + frac * _POW10[9 - frac_len]).astype(np.int64)
    n_named = 2 if event == EVENT_AGGREGATED else 4
    start = values[:, n_named]
    end = values[:, n_named + 1]
    nr_accesses = values[:, n_named + 2]
    if np.any(start > end) or np.any(nr_accesses > _U32_MAX):
        return None
    if k == len(layouts[0]):
        age = values[:, k - 1]
        if np.any(age >= _U32_MAX):
            return None
        age = age.astype(np.uint32)
    else:
        age = np.full(n, AGE_UNKNOWN, dtype=np.uint32)
    nr_regions = values[:, n_named - 1]
    if np.any((nr_regions == 0) | (nr_regions > _U32_MAX)):
        return None
    out = {
        "time_ns": time_ns,
        "start": np.ascontiguousarray(start),
        "end": np.ascontiguousarray(end),
        "nr_accesses": nr_accesses,
        "age": age,
        "nr_regions": nr_regions,
    }
    if event == EVENT_AGGREGATED:
        out["target_id"] = np.ascontiguousarray(values[:, 0])
    else:
        out["context_idx"] = values[:, 0]
        out["scheme_idx"] = values[:, 1]
        out["target_id"] = np.ascontiguousarray(values[:, 2])
    return out


def _timestamp_spans(a: np.ndarray, ts_colon: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Start of each ``<sec>.<frac>`` that ends at a first ": ", and its fraction length.

    Walks back from the colon over digits, one byte position for all lines at a
    time (timestamps are short).  None if any timestamp is unusual (then the
    exact parser takes the block).
    """
    n = ts_colon.size
    frac_len = np.zeros(n, dtype=np.int64)
    active = np.arange(n)
    for k in range(1, 11):  # up to 9 fraction digits, then the dot
        byte = a[ts_colon[active] - k]
        is_digit = (byte - np.uint8(48)) < 10
        stop = ~is_digit
        if np.any(stop & (byte != _DOT)) or (k == 1 and stop.any()):
            return None
        frac_len[active[stop]] = k - 1
        active = active[is_digit]
        if active.size == 0:
            break
    if active.size:
        return None
    dot = ts_colon - 1 - frac_len
    sec_len = np.zeros(n, dtype=np.int64)
    active = np.arange(n)
    for k in range(1, 12):  # up to 10 seconds digits, then a blank
        byte = a[np.maximum(dot[active] - k, 0)]
        is_digit = (byte - np.uint8(48)) < 10
        stop = ~is_digit
        if (k == 1 and stop.any()) or np.any(stop & (byte == _DOT)):
            return None
        sec_len[active[stop]] = k - 1
        active = active[is_digit]
        if active.size == 0:
            break
    if active.size:
        return None
    return dot - sec_len, frac_len


def _parse_exact(
    a: np.ndarray,
    line_end: np.ndarray,
    ts_colon: np.ndarray,
    line: np.ndarray,
    field_start: np.ndarray,
    event: str,
    first_line_no: int,
    n_other: int,
) -> ParsedEvents:
    """Digit-run parser: slower, exact, and names the first malformed line."""
    this_line_end = line_end[line]
    run_start, run_end, run_value = _digit_runs(a)
    first_field = np.searchsorted(run_start, field_start)
    past_last = np.searchsorted(run_start, this_line_end)
    n_fields = past_last - first_field

    def fail(mask: np.ndarray, reason: str) -> None:
        if mask.any():
            raise _LineError(int(line[np.argmax(mask)]), reason)

    # Timestamp: "<sec>.<frac>" right before the first ": ".
    frac = first_field - 1
    fail(frac < 1, "no timestamp")
    frac_ok = (run_end[frac] == ts_colon) & (a[run_start[frac] - 1] == _DOT)
    sec = frac - 1
    frac_ok &= run_end[sec] == run_start[frac] - 1
    fail(~frac_ok, "timestamp is not <seconds>.<fraction>")
    frac_len = run_end[frac] - run_start[frac]
    fail((run_end[sec] - run_start[sec]) > 10, "timestamp seconds out of range")
    frac_value = run_value[frac]
    long_frac = frac_len > 9
    if long_frac.any():
        frac_value = frac_value.copy()
        frac_value[long_frac] //= _POW10[np.minimum(frac_len[long_frac] - 9, 19)]
    scale = _POW10[np.clip(9 - frac_len, 0, 9)]
    time_ns = (run_value[sec] * np.uint64(1_000_000_000) + frac_value * scale).astype(np.int64)

    if event == EVENT_AGGREGATED:
        names = _AGG_NAMES
        fail(~np.isin(n_fields, (5, 6)), "expected 5 or 6 numeric fields")
    else:
        names = _APPLY_NAMES
        fail(n_fields != 8, "expected 8 numeric fields")
    for k, name in enumerate(names):
        ok = _matches(a, run_start[first_field + k], -len(name), name)
        fail(~ok, f"expected {name.decode()}<number>")
    addr = first_field + len(names)
    ok = a[run_start[addr] - 1] == _SPACE
    ok &= (run_end[addr] == run_start[addr + 1] - 1) & (a[run_end[addr]] == _DASH)
    ok &= a[run_end[addr + 1]] == _COLON
    ok &= a[run_end[addr + 1] + 1] == _SPACE
    fail(~ok, "expected <start>-<end>: ")
    for k in (addr + 2, addr + 3):
        present = k < past_last
        ok = ~present | (a[run_start[np.minimum(k, run_start.size - 1)] - 1] == _SPACE)
        fail(~ok, "expected space-separated nr_accesses and age")
    tail = run_end[past_last - 1]
    fail(~np.isin(a[tail], (_NL, _SPACE, _CR)), "unexpected text after the last field")

    lengths = run_end - run_start
    field_idx = first_field[:, None] + np.arange(len(names) + 3)
    too_long = (lengths[field_idx] > 20) | (
        (lengths[field_idx] == 20) & (run_value[field_idx] < _POW10[19])
    )
    fail(too_long.any(axis=1), "number does not fit in 64 bits")

    start = run_value[addr]
    end = run_value[addr + 1]
    fail(start > end, "region start is above its end")
    nr_regions = run_value[addr - 1]
    nr_accesses = run_value[addr + 2]
    fail(nr_accesses > _U32_MAX, "nr_accesses does not fit in 32 bits")
    fail(nr_regions > _U32_MAX, "nr_regions does not fit in 32 bits")
    fail(nr_regions == 0, "nr_regions is 0")
    has_age = n_fields == len(names) + 4
    age = np.full(line.size, AGE_UNKNOWN, dtype=np.uint32)
    age_value = run_value[np.minimum(addr + 3, run_value.size - 1)]
    fail(has_age & (age_value >= _U32_MAX), "age does not fit in 32 bits")
    age[has_age] = age_value[has_age]

    if event == EVENT_AGGREGATED:
        target_id = run_value[first_field]
        scheme_idx = np.full(line.size, -1, dtype=np.int64)
        context_idx = scheme_idx
    else:
        context_idx = run_value[first_field].astype(np.int64)
        scheme_idx = run_value[first_field + 1].astype(np.int64)
        target_id = run_value[first_field + 2]
    return ParsedEvents(
        line_no=line.astype(np.int64) + first_line_no,
        time_ns=time_ns,
        target_id=target_id,
        scheme_idx=scheme_idx,
        context_idx=context_idx,
        nr_regions=nr_regions.astype(np.int64),
        start=start,
        end=end,
        nr_accesses=nr_accesses.astype(np.uint32),
        age=age,
        other_event_lines=n_other,
    )
