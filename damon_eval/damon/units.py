"""Sizes, durations and percentages as people write them, exactly.

Binary multiples only: ``K``, ``KB`` and ``KiB`` all mean 1024 bytes (as old
damo and today's damo read them; there is no decimal variant).  Arithmetic is
exact (:class:`fractions.Fraction`), so ``1.5M`` is 1572864 bytes and ``0.1 %``
is one tenth of a percent, with no float rounding.

Parsers raise :class:`UnitError` (a :class:`ValueError`) whose message names the
bad text and what is valid; the scheme parser adds the file and line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from fractions import Fraction

SIZE_UNITS: dict[str, int] = {
    "B": 1,
    "K": 1 << 10,
    "KB": 1 << 10,
    "KiB": 1 << 10,
    "M": 1 << 20,
    "MB": 1 << 20,
    "MiB": 1 << 20,
    "G": 1 << 30,
    "GB": 1 << 30,
    "GiB": 1 << 30,
    "T": 1 << 40,
    "TB": 1 << 40,
    "TiB": 1 << 40,
}
"""Size suffixes; all binary (1 K = 1024 B)."""

TIME_UNITS_US: dict[str, Fraction] = {
    "ns": Fraction(1, 1000),
    "us": Fraction(1),
    "ms": Fraction(1000),
    "s": Fraction(1_000_000),
    "m": Fraction(60_000_000),
    "h": Fraction(3_600_000_000),
    "d": Fraction(86_400_000_000),
}
"""Duration suffixes in microseconds (``ns`` only where it adds up to whole µs)."""

_NUMBER = re.compile(r"^(?P<number>[0-9][0-9,]*(?:\.[0-9]+)?)\s*(?P<unit>[A-Za-z%]*)$")


class UnitError(ValueError):
    """Text that is not a valid size, duration or percentage."""


def _split(text: str, what: str) -> tuple[Fraction, str]:
    stripped = text.strip()
    if stripped.startswith("-"):
        raise UnitError(f"{what} {text!r} is negative; only values >= 0 are valid")
    match = _NUMBER.match(stripped)
    if not match:
        raise UnitError(f"{what} {text!r} is not a number with an optional unit")
    return Fraction(match["number"].replace(",", "")), match["unit"]


def _valid(units: Mapping[str, object]) -> str:
    return ", ".join(units)


def parse_size(text: str) -> int:
    """Bytes in ``text`` such as ``4K``, ``2 MiB``, ``4.000 KiB`` or ``4096``."""
    number, unit = _split(text, "size")
    if unit == "":
        unit = "B"
    return _whole(number, unit, SIZE_UNITS, text, ("size", "size", "bytes"))


def parse_duration_us(text: str, *, require_unit: bool = True) -> int:
    """Microseconds in ``text`` such as ``7s``, ``100 ms``, ``1 m 30 s`` or ``0``.

    A bare number is only accepted when it is zero (or ``require_unit`` is
    false, then it means microseconds).
    """
    parts = text.split()
    # damo writes compound durations as "<n> <unit> <n> <unit> ...".
    if len(parts) > 2 and len(parts) % 2 == 0:
        return sum(
            parse_duration_us(f"{parts[i]} {parts[i + 1]}", require_unit=require_unit)
            for i in range(0, len(parts), 2)
        )
    number, unit = _split(text, "duration")
    if unit == "":
        if require_unit and number != 0:
            raise UnitError(
                f"duration {text!r} needs a unit; valid: {_valid(TIME_UNITS_US)} (e.g. 7s, 100ms)"
            )
        unit = "us"
    return _whole(number, unit, TIME_UNITS_US, text, ("time", "duration", "microseconds"))


def _whole(
    number: Fraction,
    unit: str,
    units: Mapping[str, int | Fraction],
    text: str,
    names: tuple[str, str, str],
) -> int:
    """``number`` ``unit`` in the base unit of ``units``, which must come out whole.

    ``names``: the unit's kind, the quantity and the base unit, for the messages.
    """
    kind, quantity, base = names
    if unit not in units:
        raise UnitError(f"unknown {kind} unit {unit!r} in {text!r}; valid: {_valid(units)}")
    value = number * units[unit]
    if value.denominator != 1:
        raise UnitError(f"{quantity} {text!r} is not a whole number of {base}")
    return int(value)


def parse_percent(text: str, *, allow_sign: bool = True) -> Fraction:
    """Percent in ``text`` such as ``5``, ``5%`` or ``5 %`` (an exact fraction)."""
    number, unit = _split(text, "percentage")
    if unit not in ("", "%") or (unit == "%" and not allow_sign):
        raise UnitError(f"unknown unit {unit!r} in percentage {text!r}; valid: % or none")
    return number


def format_size(n_bytes: int, *, compact: bool = False) -> str:
    """Exact human size: ``4 KiB``, ``4097 B`` (``compact``: ``4K``, ``4097``)."""
    for unit, short in (("TiB", "T"), ("GiB", "G"), ("MiB", "M"), ("KiB", "K")):
        factor = SIZE_UNITS[unit]
        if n_bytes and n_bytes % factor == 0:
            return f"{n_bytes // factor}{short}" if compact else f"{n_bytes // factor} {unit}"
    return f"{n_bytes}" if compact else f"{n_bytes} B"


def format_duration(us: int, *, compact: bool = False) -> str:
    """Exact human duration: ``7 s``, ``1500 ms``, ``130 us`` (``compact``: ``7s``)."""
    for unit in ("d", "h", "m", "s", "ms"):
        factor = TIME_UNITS_US[unit]
        if us and Fraction(us) % factor == 0:
            value = int(Fraction(us) / factor)
            return f"{value}{unit}" if compact else f"{value} {unit}"
    return f"{us}us" if compact else f"{us} us"


def format_decimal(value: Fraction | int) -> str:
    """``5``, ``0.5``, ``12.125``: exact when the value is a finite decimal.

    Values typed as decimals always are; others get 9 decimal places.
    """
    fraction = Fraction(value)
    if fraction.denominator == 1:
        return str(fraction.numerator)
    denominator = fraction.denominator
    for prime in (2, 5):
        while denominator % prime == 0:
            denominator //= prime
    if denominator == 1:
        digits = 0
        while (fraction * 10**digits).denominator != 1:
            digits += 1
        scaled = str(int(fraction * 10**digits)).rjust(digits + 1, "0")
        return f"{scaled[:-digits]}.{scaled[-digits:]}"
    return f"{float(fraction):.9f}".rstrip("0").rstrip(".")
