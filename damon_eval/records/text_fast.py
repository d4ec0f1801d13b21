"""The fast path of the trace text parser: one ``np.fromstring`` over the blanked block.

Returns None on anything unusual; :mod:`~damon_eval.records.text_exact` then parses
the block (and names a bad line).
"""

from __future__ import annotations

import numpy as np

from damon_eval.records.model import AGE_UNKNOWN, EVENT_AGGREGATED
from damon_eval.records.text_events import (
    DOT,
    POW10,
    SPACE,
    U32_MAX,
    match_words,
    word_matcher,
)

# Kept text of event lines -> numbers separated by single spaces: the dot of the
# timestamp and the dash of start-end separate, names, '=', ':' and blanked
# (zero) bytes vanish.  Any other byte makes numpy's parser stop (fallback).
_FIELD_TABLE = bytes(SPACE if c in b".-\n" else c for c in range(256))
_FIELD_DELETE = bytes([0]) + bytes(
    c for c in range(256) if chr(c).isascii() and (chr(c).isalpha() or c in b"_=:")
)
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


def _n_digits(values: np.ndarray) -> np.ndarray:
    return 1 + np.searchsorted(POW10[1:], values, side="right")


def parse_fast(
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
    digits) falls back to :func:`parse_exact`, which also names a bad line.
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
    kept[blank_start] = SPACE
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
        blank = a[field_start + pad] == SPACE
        if not blank.any():
            break
        pad[blank] += 1
        if pad.max() > 16:
            return None
    pos = field_start + pad
    digits = _n_digits(values)
    for j, prefix in enumerate(layout):
        if not match_words(words, pos, word_matcher(prefix)).all():
            return None
        pos += len(prefix) + digits[:, j]
    if np.any(pos != this_end):
        return None

    sec, frac = table[:, 0], table[:, 1]
    time_ns = (sec * np.uint64(1_000_000_000) + frac * POW10[9 - frac_len]).astype(np.int64)
    n_named = 2 if event == EVENT_AGGREGATED else 4
    start = values[:, n_named]
    end = values[:, n_named + 1]
    nr_accesses = values[:, n_named + 2]
    if np.any(start > end) or np.any(nr_accesses > U32_MAX):
        return None
    if k == len(layouts[0]):
        age = values[:, k - 1]
        if np.any(age >= U32_MAX):
            return None
        age = age.astype(np.uint32)
    else:
        age = np.full(n, AGE_UNKNOWN, dtype=np.uint32)
    nr_regions = values[:, n_named - 1]
    if np.any((nr_regions == 0) | (nr_regions > U32_MAX)):
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
        if np.any(stop & (byte != DOT)) or (k == 1 and stop.any()):
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
        if (k == 1 and stop.any()) or np.any(stop & (byte == DOT)):
            return None
        sec_len[active[stop]] = k - 1
        active = active[is_digit]
        if active.size == 0:
            break
    if active.size:
        return None
    return dot - sec_len, frac_len
