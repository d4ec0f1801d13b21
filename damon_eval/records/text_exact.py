"""The exact path of the trace text parser: digit runs, checked field by field.

Slower than :mod:`~damon_eval.records.text_fast`; names the first malformed line.
"""

from __future__ import annotations

import numpy as np

from damon_eval.records.model import AGE_UNKNOWN, EVENT_AGGREGATED
from damon_eval.records.text_events import (
    COLON,
    CR,
    DASH,
    DOT,
    NL,
    POW10,
    SPACE,
    U32_MAX,
)

# Field names preceding the numeric runs, per event; None = a plain separator.
_AGG_NAMES = (b"target_id=", b"nr_regions=")
_APPLY_NAMES = (b"ctx_idx=", b"scheme_idx=", b"target_idx=", b"nr_regions=")


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
    digits *= POW10[exponent]
    values = np.add.reduceat(digits, first)
    return run_start, run_end, values


class LineError(Exception):
    def __init__(self, local_line: int, reason: str):
        super().__init__(reason)
        self.local_line = local_line
        self.reason = reason


def parse_exact(
    a: np.ndarray,
    line_end: np.ndarray,
    ts_colon: np.ndarray,
    line: np.ndarray,
    field_start: np.ndarray,
    event: str,
) -> dict[str, np.ndarray]:
    """Digit-run parser: slower, exact, and names the first malformed line.

    Returns the fields as :func:`~damon_eval.records.text_fast.parse_fast` does;
    raises :class:`LineError` for the first line that does not parse.
    """
    this_line_end = line_end[line]
    run_start, run_end, run_value = _digit_runs(a)
    first_field = np.searchsorted(run_start, field_start)
    past_last = np.searchsorted(run_start, this_line_end)
    n_fields = past_last - first_field

    def fail(mask: np.ndarray, reason: str) -> None:
        if mask.any():
            raise LineError(int(line[np.argmax(mask)]), reason)

    # Timestamp: "<sec>.<frac>" right before the first ": ".
    frac = first_field - 1
    fail(frac < 1, "no timestamp")
    frac_ok = (run_end[frac] == ts_colon) & (a[run_start[frac] - 1] == DOT)
    sec = frac - 1
    frac_ok &= run_end[sec] == run_start[frac] - 1
    fail(~frac_ok, "timestamp is not <seconds>.<fraction>")
    frac_len = run_end[frac] - run_start[frac]
    fail((run_end[sec] - run_start[sec]) > 10, "timestamp seconds out of range")
    frac_value = run_value[frac]
    long_frac = frac_len > 9
    if long_frac.any():
        frac_value = frac_value.copy()
        frac_value[long_frac] //= POW10[np.minimum(frac_len[long_frac] - 9, 19)]
    scale = POW10[np.clip(9 - frac_len, 0, 9)]
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
    ok = a[run_start[addr] - 1] == SPACE
    ok &= (run_end[addr] == run_start[addr + 1] - 1) & (a[run_end[addr]] == DASH)
    ok &= a[run_end[addr + 1]] == COLON
    ok &= a[run_end[addr + 1] + 1] == SPACE
    fail(~ok, "expected <start>-<end>: ")
    for k in (addr + 2, addr + 3):
        present = k < past_last
        ok = ~present | (a[run_start[np.minimum(k, run_start.size - 1)] - 1] == SPACE)
        fail(~ok, "expected space-separated nr_accesses and age")
    tail = run_end[past_last - 1]
    fail(~np.isin(a[tail], (NL, SPACE, CR)), "unexpected text after the last field")

    lengths = run_end - run_start
    field_idx = first_field[:, None] + np.arange(len(names) + 3)
    too_long = (lengths[field_idx] > 20) | (
        (lengths[field_idx] == 20) & (run_value[field_idx] < POW10[19])
    )
    fail(too_long.any(axis=1), "number does not fit in 64 bits")

    start = run_value[addr]
    end = run_value[addr + 1]
    fail(start > end, "region start is above its end")
    nr_regions = run_value[addr - 1]
    nr_accesses = run_value[addr + 2]
    fail(nr_accesses > U32_MAX, "nr_accesses does not fit in 32 bits")
    fail(nr_regions > U32_MAX, "nr_regions does not fit in 32 bits")
    fail(nr_regions == 0, "nr_regions is 0")
    has_age = n_fields == len(names) + 4
    age = np.full(line.size, AGE_UNKNOWN, dtype=np.uint32)
    age_value = run_value[np.minimum(addr + 3, run_value.size - 1)]
    fail(has_age & (age_value >= U32_MAX), "age does not fit in 32 bits")
    age[has_age] = age_value[has_age]

    fields = {
        "time_ns": time_ns,
        "nr_regions": nr_regions,
        "start": start,
        "end": end,
        "nr_accesses": nr_accesses,
        "age": age,
    }
    if event == EVENT_AGGREGATED:
        fields["target_id"] = run_value[first_field]
    else:
        fields["context_idx"] = run_value[first_field]
        fields["scheme_idx"] = run_value[first_field + 1]
        fields["target_id"] = run_value[first_field + 2]
    return fields
