"""Region events parsed from DAMON trace text, and the byte-level helpers both parsers share.

See :mod:`damon_eval.records.textparse` for the accepted line forms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from damon_eval.records.model import EVENT_AGGREGATED, EVENT_BEFORE_APPLY

NL, SPACE, COLON, DOT, DASH, CR = 10, 32, 58, 46, 45, 13

# Event name as it follows the timestamp's ": ", with and without perf's "damon:".
EVENT_PATTERNS: tuple[tuple[bytes, str], ...] = (
    (b"damon:damon_aggregated: ", EVENT_AGGREGATED),
    (b"damon_aggregated: ", EVENT_AGGREGATED),
    (b"damon:damos_before_apply: ", EVENT_BEFORE_APPLY),
    (b"damos_before_apply: ", EVENT_BEFORE_APPLY),
)
PAD = 64

POW10 = np.array([10**k for k in range(20)], dtype=np.uint64)
U32_MAX = 0xFFFFFFFF


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
    for pattern, event in EVENT_PATTERNS:
        pos = buf.find(b": " + pattern)
        if pos >= 0 and (best is None or pos < best[0]):
            best = (pos, event)
    return best[1] if best else None


def empty_events(other: int = 0) -> ParsedEvents:
    z64 = np.zeros(0, dtype=np.int64)
    zu64 = np.zeros(0, dtype=np.uint64)
    zu32 = np.zeros(0, dtype=np.uint32)
    return ParsedEvents(z64, z64, zu64, z64, z64, z64, zu64, zu64, zu32, zu32, other)


_ALL_BYTES = np.uint64(2**64 - 1)


def word_view(a: np.ndarray) -> np.ndarray:
    """The little-endian uint64 starting at every byte offset (an unaligned view)."""
    return np.ndarray(shape=(a.size - 7,), dtype="<u8", buffer=a, offset=0, strides=(1,))


_MATCHERS: dict[bytes, tuple[tuple[int, np.uint64, np.uint64], ...]] = {}


def word_matcher(text: bytes) -> tuple[tuple[int, np.uint64, np.uint64], ...]:
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


def match_words(words: np.ndarray, pos: np.ndarray, matcher) -> np.ndarray:
    ok = None
    for offset, mask, value in matcher:
        word = words[pos + offset]
        if mask != _ALL_BYTES:
            word = word & mask
        eq = word == value
        ok = eq if ok is None else ok & eq
    return ok
