"""damo's human/raw number spellings in its JSON records ("4,096", "0 B", "5 ms").

damo writes JSON values through its own formatters even in "raw" mode, so
numbers can be plain ints, strings with thousands separators, or strings with
a byte or time unit.  These helpers accept all of them and nothing else.
"""

from __future__ import annotations

from damon_eval.damon.units import SIZE_UNITS
from damon_eval.errors import RecordFormatError

ULONG_MAX = 2**64 - 1

# the scheme language's units, plus the larger ones damo can print
_BYTE_UNITS = {
    **SIZE_UNITS,
    "P": 1 << 50,
    "PB": 1 << 50,
    "PiB": 1 << 50,
    "E": 1 << 60,
    "EB": 1 << 60,
    "EiB": 1 << 60,
}
_TIME_UNITS_NS = {
    "ns": 1,
    "us": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
    "d": 86_400_000_000_000,
}


def _number(text: str, where: str) -> int | float:
    cleaned = text.replace(",", "").strip()
    try:
        return int(cleaned)
    except ValueError:
        pass
    try:
        return float(cleaned)
    except ValueError:
        raise RecordFormatError(f"{where}: {text!r} is not a number") from None


def _split_unit(text: str, units: dict[str, int]) -> tuple[str, int] | None:
    stripped = text.strip()
    for unit in sorted(units, key=len, reverse=True):
        if stripped.endswith(unit):
            head = stripped[: -len(unit)].strip()
            if head and (head[-1].isdigit() or head[-1] == "."):
                return head, units[unit]
    return None


def to_int(value: object, where: str) -> int:
    """A count (``nr_accesses``, ``target_id``): int, or a string of digits and commas."""
    if isinstance(value, bool) or value is None:
        raise RecordFormatError(f"{where}: expected a number, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str):
        if value.strip() == "max":
            return ULONG_MAX
        return int(_number(value, where))
    raise RecordFormatError(f"{where}: expected a number, got {value!r}")


def to_bytes(value: object, where: str) -> int:
    """An address or size: a plain number or a string like ``"4,096"`` or ``"1.5 MiB"``."""
    if isinstance(value, str):
        split = _split_unit(value, _BYTE_UNITS)
        if split is not None:
            head, scale = split
            return min(ULONG_MAX, int(_number(head, where) * scale))
    return to_int(value, where)


def to_ns(value: object, where: str) -> int:
    """A time in nanoseconds: a plain number (ns) or ``"<n> <unit>"`` parts like ``"1 s 5 ms"``."""
    if isinstance(value, str):
        parts = value.split()
        if len(parts) > 2 and len(parts) % 2 == 0:
            return sum(to_ns(" ".join(parts[i : i + 2]), where) for i in range(0, len(parts), 2))
        split = _split_unit(value, _TIME_UNITS_NS)
        if split is not None:
            head, scale = split
            return round(_number(head, where) * scale)
        return round(_number(value, where))
    if isinstance(value, float):
        return round(value)
    return to_int(value, where)


def to_us(value: object, where: str) -> int:
    """A time in microseconds: a plain number (µs) or a string with a unit."""
    if isinstance(value, str) and _split_unit(value, _TIME_UNITS_NS) is not None:
        return round(to_ns(value, where) / 1000)
    if isinstance(value, str) and len(value.split()) > 2:
        return round(to_ns(value, where) / 1000)
    return to_int(value, where) if not isinstance(value, float) else round(value)
