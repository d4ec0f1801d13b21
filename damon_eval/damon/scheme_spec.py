"""A DAMOS scheme in human units, and the raw values it becomes.

A :class:`SchemeSpec` keeps the human values (bytes, percent, microseconds);
:meth:`SchemeSpec.to_raw` turns it into the raw
:class:`~damon_eval.damon.model.Scheme` for given monitoring intervals.  Its
two written forms are :mod:`damon_eval.damon.scheme_text` (the seed's) and
:mod:`damon_eval.damon.scheme_damo` (damo's JSON).

Conversion (old damo's rules, exact arithmetic):

* frequency: ``nr_accesses = int(percent * (aggr_us / sample_us) / 100)``;
  ``max`` is ``aggr_us // sample_us``;
* age: ``int(age_us / aggr_us)`` aggregation intervals; ``max`` is UINT_MAX;
* size: bytes; ``max`` is ULONG_MAX.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from damon_eval.damon import units
from damon_eval.damon.model import (
    ACTIONS,
    UINT_MAX,
    ULONG_MAX,
    AccessPattern,
    Filter,
    MonitoringAttrs,
    Quotas,
    Scheme,
    Watermarks,
)
from damon_eval.errors import ConfigError

KEYWORD_HELP = "min, max, null"


def bound_keyword(token: str, minimum: bool) -> str | None:
    """'min' or 'max' for a keyword token (``null`` takes its position's meaning)."""
    if token == "null":
        return "min" if minimum else "max"
    return token if token in ("min", "max") else None


@dataclass(frozen=True, slots=True)
class Frequency:
    """An access-frequency bound: a percentage of the samples, or raw samples."""

    percent: Fraction | None = None
    samples: int | None = None

    def __post_init__(self) -> None:
        if (self.percent is None) == (self.samples is None):
            raise ConfigError("Frequency needs exactly one of percent or samples")
        if self.percent is not None:
            object.__setattr__(self, "percent", Fraction(self.percent))
            if not 0 <= self.percent <= 100:
                raise ConfigError(
                    f"frequency {units.format_decimal(self.percent)} % is out of range; "
                    "valid: 0..100 %"
                )
        if self.samples is not None and (isinstance(self.samples, bool) or self.samples < 0):
            raise ConfigError(f"frequency {self.samples} samples must be a count >= 0")

    @property
    def unit(self) -> str:
        return "percent" if self.percent is not None else "samples"

    @property
    def value(self) -> Fraction:
        """The number in :attr:`unit`."""
        return self.percent if self.percent is not None else Fraction(self.samples or 0)

    def raw(self, attrs: MonitoringAttrs) -> int:
        if self.samples is not None:
            return self.samples
        assert self.percent is not None
        return int(self.percent * Fraction(attrs.aggr_us, attrs.sample_us) / 100)

    def to_dict(self) -> dict[str, Any]:
        if self.percent is not None:
            return {"percent": units.format_decimal(self.percent)}
        return {"samples": self.samples}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Frequency:
        if set(data) == {"percent"}:
            return cls(percent=Fraction(str(data["percent"])))
        if set(data) == {"samples"}:
            return cls(samples=int(data["samples"]))
        raise ConfigError(f"Frequency must be {{'percent': ...}} or {{'samples': ...}}: {data}")


@dataclass(frozen=True, slots=True)
class Age:
    """An age bound: microseconds, or raw aggregation intervals."""

    us: int | None = None
    aggr_intervals: int | None = None

    def __post_init__(self) -> None:
        if (self.us is None) == (self.aggr_intervals is None):
            raise ConfigError("Age needs exactly one of us or aggr_intervals")
        value = self.us if self.us is not None else self.aggr_intervals
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"age {value!r} must be an integer >= 0")

    @property
    def unit(self) -> str:
        return "us" if self.us is not None else "aggr_intervals"

    @property
    def value(self) -> int:
        """The number in :attr:`unit`."""
        return self.us if self.us is not None else (self.aggr_intervals or 0)

    def raw(self, attrs: MonitoringAttrs) -> int:
        if self.aggr_intervals is not None:
            return min(self.aggr_intervals, UINT_MAX)
        assert self.us is not None
        return min(self.us // attrs.aggr_us, UINT_MAX)

    def to_dict(self) -> dict[str, Any]:
        return {"us": self.us} if self.us is not None else {"aggr_intervals": self.aggr_intervals}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Age:
        if set(data) == {"us"}:
            return cls(us=int(data["us"]))
        if set(data) == {"aggr_intervals"}:
            return cls(aggr_intervals=int(data["aggr_intervals"]))
        raise ConfigError(f"Age must be {{'us': ...}} or {{'aggr_intervals': ...}}: {data}")


ZERO_FREQUENCY = Frequency(percent=Fraction(0))
ZERO_AGE = Age(us=0)


@dataclass(frozen=True, slots=True)
class SchemeSpec:
    """A scheme in human units.  ``None`` in a bound means 'max' (the largest value)."""

    action: str
    sz_min: int | None = 0
    sz_max: int | None = None
    freq_min: Frequency | None = ZERO_FREQUENCY
    freq_max: Frequency | None = None
    age_min: Age | None = ZERO_AGE
    age_max: Age | None = None
    quotas: Quotas = field(default_factory=Quotas)
    watermarks: Watermarks = field(default_factory=Watermarks)
    filters: tuple[Filter, ...] = ()
    apply_interval_us: int = 0
    name: str = field(default="", compare=False)
    source: str = field(default="", compare=False)
    """Where the spec came from, e.g. ``configs/schemes/prcl.damos:5``."""

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ConfigError(f"unknown action {self.action!r}; valid: {', '.join(ACTIONS)}")
        if not isinstance(self.filters, tuple):
            object.__setattr__(self, "filters", tuple(self.filters))
        for low, high, what in (
            (self.sz_min, self.sz_max, "size"),
            (self.freq_min, self.freq_max, "frequency"),
            (self.age_min, self.age_max, "age"),
        ):
            _check_order(low, high, what)

    def to_raw(self, attrs: MonitoringAttrs) -> Scheme:
        """The raw scheme for ``attrs`` (sample and aggregation intervals)."""
        max_nr_accesses = attrs.max_nr_accesses
        pattern = AccessPattern(
            sz_min=ULONG_MAX if self.sz_min is None else self.sz_min,
            sz_max=ULONG_MAX if self.sz_max is None else self.sz_max,
            nr_accesses_min=max_nr_accesses if self.freq_min is None else self.freq_min.raw(attrs),
            nr_accesses_max=max_nr_accesses if self.freq_max is None else self.freq_max.raw(attrs),
            age_min=UINT_MAX if self.age_min is None else self.age_min.raw(attrs),
            age_max=UINT_MAX if self.age_max is None else self.age_max.raw(attrs),
        )
        return Scheme(
            action=self.action,
            access_pattern=pattern,
            quotas=self.quotas,
            watermarks=self.watermarks,
            filters=self.filters,
            apply_interval_us=self.apply_interval_us,
        )

    @property
    def text_expressible(self) -> bool:
        """Whether the 7-field text form can say everything this spec says."""
        return (
            self.quotas == Quotas()
            and self.watermarks == Watermarks()
            and not self.filters
            and self.apply_interval_us == 0
            and all(f is None or f.percent is not None for f in (self.freq_min, self.freq_max))
            and all(a is None or a.us is not None for a in (self.age_min, self.age_max))
        )

    def describe(self) -> str:
        return f"{self.action} from {self.source}" if self.source else self.action

    def to_dict(self) -> dict[str, Any]:
        """The human form as plain JSON (for results and provenance)."""

        def bound(value: Any) -> Any:
            if value is None:
                return "max"
            return value.to_dict() if hasattr(value, "to_dict") else value

        return {
            "action": self.action,
            "sz_min": bound(self.sz_min),
            "sz_max": bound(self.sz_max),
            "freq_min": bound(self.freq_min),
            "freq_max": bound(self.freq_max),
            "age_min": bound(self.age_min),
            "age_max": bound(self.age_max),
            "quotas": self.quotas.to_dict(),
            "watermarks": self.watermarks.to_dict(),
            "filters": [f.to_dict() for f in self.filters],
            "apply_interval_us": self.apply_interval_us,
            "name": self.name,
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SchemeSpec:
        """Inverse of :meth:`to_dict`."""

        def bound(key: str, default: Any, parse: Any) -> Any:
            value = data.get(key, default)
            return None if value == "max" else parse(value)

        try:
            return cls(
                action=data["action"],
                sz_min=bound("sz_min", 0, int),
                sz_max=bound("sz_max", "max", int),
                freq_min=bound("freq_min", {"percent": "0"}, Frequency.from_dict),
                freq_max=bound("freq_max", "max", Frequency.from_dict),
                age_min=bound("age_min", {"us": 0}, Age.from_dict),
                age_max=bound("age_max", "max", Age.from_dict),
                quotas=Quotas.from_dict(data.get("quotas", {})),
                watermarks=Watermarks.from_dict(data.get("watermarks", {})),
                filters=tuple(Filter.from_dict(f) for f in data.get("filters", [])),
                apply_interval_us=int(data.get("apply_interval_us", 0)),
                name=str(data.get("name", "")),
                source=str(data.get("source", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"invalid scheme spec {dict(data)!r}: {exc}") from None


def _check_order(low: Any, high: Any, what: str) -> None:
    if low is None or high is None:
        if low is None and high is not None:
            raise ConfigError(f"min {what} is 'max' but max {what} is not")
        return
    if isinstance(low, int):
        if low > high:
            raise ConfigError(f"min {what} {low} > max {what} {high}")
        return
    if low.unit != high.unit:
        raise ConfigError(f"min and max {what} use different units ({low.unit}, {high.unit})")
    if low.value > high.value:
        raise ConfigError(f"min {what} > max {what} ({low.to_dict()} > {high.to_dict()})")
