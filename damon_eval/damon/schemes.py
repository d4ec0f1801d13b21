"""The scheme language: the seed's text form, damo's JSON form, and their raw values.

Text form (one scheme per line, ``#`` starts a comment)::

    <min size> <max size> <min frequency %> <max frequency %> <min age> <max age> <action>

``min`` and ``max`` stand for the smallest and largest value; ``null`` (the
seed's spelling) means ``min`` in a min position and ``max`` in a max position.
JSON form: damo's ``--schemes`` list (see docs/schemes.md for both).

A :class:`SchemeSpec` keeps the human values (bytes, percent, microseconds);
:meth:`SchemeSpec.resolve` turns it into a :class:`ResolvedScheme` holding both
the spec and the raw :class:`~damon_eval.damon.model.Scheme` for given
monitoring intervals, so a result can always say what ran.

Conversion (old damo's rules, exact arithmetic):

* frequency: ``nr_accesses = int(percent * (aggr_us / sample_us) / 100)``;
  ``max`` is ``aggr_us // sample_us``;
* age: ``int(age_us / aggr_us)`` aggregation intervals; ``max`` is UINT_MAX;
* size: bytes; ``max`` is ULONG_MAX.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from damon_eval.damon import units
from damon_eval.damon.model import (
    ACTIONS,
    FILTER_TYPES,
    UINT_MAX,
    ULONG_MAX,
    WATERMARK_METRICS,
    AccessPattern,
    Filter,
    MonitoringAttrs,
    Quotas,
    Scheme,
    Watermarks,
)
from damon_eval.damon.sysfs_layout import scheme_sysfs_files
from damon_eval.errors import ConfigError, SchemeSyntaxError

TEXT_FIELDS = (
    "<min size>",
    "<max size>",
    "<min frequency %>",
    "<max frequency %>",
    "<min age>",
    "<max age>",
    "<action>",
)
KEYWORDS = ("min", "max", "null")
_KEYWORD_HELP = "min, max, null"


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

    def resolve(self, attrs: MonitoringAttrs) -> ResolvedScheme:
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
        raw = Scheme(
            action=self.action,
            access_pattern=pattern,
            quotas=self.quotas,
            watermarks=self.watermarks,
            filters=self.filters,
            apply_interval_us=self.apply_interval_us,
        )
        return ResolvedScheme(spec=self, attrs=attrs, raw=raw)

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

    def to_text(self) -> str:
        """The seed's one-line form, with keywords: ``4K max min 5 7s max pageout``."""
        if not self.text_expressible:
            raise ConfigError(
                f"scheme {self.describe()} has quotas, watermarks, filters, an apply interval "
                "or raw units, which the 7-field text form cannot express; use the JSON form"
            )

        def size(value: int | None) -> str:
            if value is None:
                return "max"
            return "min" if value == 0 else units.format_size(value, compact=True)

        def freq(value: Frequency | None) -> str:
            if value is None:
                return "max"
            assert value.percent is not None
            return "min" if value.percent == 0 else units.format_decimal(value.percent)

        def age(value: Age | None) -> str:
            if value is None:
                return "max"
            assert value.us is not None
            return "min" if value.us == 0 else units.format_duration(value.us, compact=True)

        return " ".join(
            (
                size(self.sz_min),
                size(self.sz_max),
                freq(self.freq_min),
                freq(self.freq_max),
                age(self.age_min),
                age(self.age_max),
                self.action,
            )
        )

    def describe(self) -> str:
        return f"{self.action} from {self.source}" if self.source else self.action

    def to_damo_json(self) -> dict[str, Any]:
        """damo's scheme object (the ``perf/schemes/*.json`` shape), exact values."""

        def size(value: int | None) -> str:
            return "max" if value is None else units.format_size(value)

        def freq(value: Frequency | None) -> str:
            if value is None:
                return "max"
            if value.percent is not None:
                return f"{units.format_decimal(value.percent)} %"
            return f"{value.samples} samples"

        def age(value: Age | None) -> str:
            if value is None:
                return "max"
            if value.us is not None:
                return units.format_duration(value.us)
            return f"{value.aggr_intervals} aggr_intervals"

        quotas = self.quotas
        return {
            "action": self.action,
            "access_pattern": {
                "sz_bytes": {"min": size(self.sz_min), "max": size(self.sz_max)},
                "nr_accesses": {"min": freq(self.freq_min), "max": freq(self.freq_max)},
                "age": {"min": age(self.age_min), "max": age(self.age_max)},
            },
            "apply_interval_us": units.format_duration(self.apply_interval_us),
            "quotas": {
                "time_ms": f"{quotas.ms} ms",
                "sz_bytes": units.format_size(quotas.bytes),
                "reset_interval_ms": "max"
                if quotas.reset_interval_ms == ULONG_MAX
                else f"{quotas.reset_interval_ms} ms",
                # Plain numbers are permil to damo: exact, unlike "0.3 %".
                "weights": {
                    "sz_permil": quotas.weight_sz_permil,
                    "nr_accesses_permil": quotas.weight_nr_accesses_permil,
                    "age_permil": quotas.weight_age_permil,
                },
            },
            "watermarks": {
                "metric": self.watermarks.metric,
                "interval_us": units.format_duration(self.watermarks.interval_us),
                "high_permil": self.watermarks.high,
                "mid_permil": self.watermarks.mid,
                "low_permil": self.watermarks.low,
            },
            "filters": [_filter_to_damo(f) for f in self.filters],
        }

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


def _filter_to_damo(damos_filter: Filter) -> dict[str, Any]:
    return {
        "filter_type": damos_filter.type,
        "matching": damos_filter.matching,
        "allow": damos_filter.allow,
        "memcg_path": damos_filter.memcg_path if damos_filter.type == "memcg" else None,
        "address_range": {"start": damos_filter.addr_start, "end": damos_filter.addr_end}
        if damos_filter.type == "addr"
        else None,
        "damon_target_idx": damos_filter.target_idx if damos_filter.type == "target" else None,
    }


@dataclass(frozen=True, slots=True)
class ResolvedScheme:
    """A scheme's human spec and the raw values it became for ``attrs``, side by side."""

    spec: SchemeSpec
    attrs: MonitoringAttrs
    raw: Scheme

    def to_text(self) -> str:
        return self.spec.to_text()

    def to_damo_json(self) -> dict[str, Any]:
        return self.spec.to_damo_json()

    def to_sysfs_dict(self) -> dict[str, int | str]:
        """Files of the scheme's sysfs directory (relative paths) and their values."""
        return scheme_sysfs_files(self.raw)

    def to_dict(self) -> dict[str, Any]:
        """Both forms plus the intervals used: what a result records about its schemes."""
        return {
            "source": self.spec.source,
            "text": self.spec.to_text() if self.spec.text_expressible else None,
            "human": self.spec.to_dict(),
            "intervals": {"sample_us": self.attrs.sample_us, "aggr_us": self.attrs.aggr_us},
            "raw": self.raw.to_dict(),
        }


def resolve_schemes(
    specs: Sequence[SchemeSpec], attrs: MonitoringAttrs
) -> tuple[ResolvedScheme, ...]:
    """Resolve every spec for the same intervals."""
    return tuple(spec.resolve(attrs) for spec in specs)


# --- text form --------------------------------------------------------------


def _where(source: str, lineno: int) -> str:
    return f"{source}:{lineno}"


def parse_schemes_text(text: str, source: str = "<argument>") -> tuple[SchemeSpec, ...]:
    """Parse the seed's text form; raises :class:`SchemeSyntaxError` naming source and line."""
    specs = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        content = line.split("#", 1)[0].strip()
        if content:
            specs.append(_parse_line(content, _where(source, lineno)))
    return tuple(specs)


def _parse_line(content: str, where: str) -> SchemeSpec:
    fields = content.split()
    if len(fields) != len(TEXT_FIELDS):
        raise SchemeSyntaxError(
            f"{where}: expected {len(TEXT_FIELDS)} fields {' '.join(TEXT_FIELDS)}, "
            f"got {len(fields)}: {content!r}"
        )
    sz_min, sz_max, f_min, f_max, a_min, a_max, action = fields
    if action not in ACTIONS:
        raise SchemeSyntaxError(f"{where}: unknown action {action!r}; valid: {', '.join(ACTIONS)}")
    try:
        spec = SchemeSpec(
            action=action,
            sz_min=_text_size(sz_min, "min size", minimum=True),
            sz_max=_text_size(sz_max, "max size", minimum=False),
            freq_min=_text_freq(f_min, "min frequency", minimum=True),
            freq_max=_text_freq(f_max, "max frequency", minimum=False),
            age_min=_text_age(a_min, "min age", minimum=True),
            age_max=_text_age(a_max, "max age", minimum=False),
            source=where,
        )
    except (units.UnitError, ConfigError) as exc:
        raise SchemeSyntaxError(f"{where}: {exc}") from None
    return spec


def _keyword(token: str, minimum: bool) -> str | None:
    """'min' or 'max' for a keyword token (``null`` takes its position's meaning)."""
    if token == "null":
        return "min" if minimum else "max"
    return token if token in ("min", "max") else None


def _text_size(token: str, what: str, *, minimum: bool) -> int | None:
    keyword = _keyword(token, minimum)
    if keyword is not None:
        return 0 if keyword == "min" else None
    try:
        return units.parse_size(token)
    except units.UnitError as exc:
        raise units.UnitError(f"{what}: {exc} (or one of {_KEYWORD_HELP})") from None


def _text_freq(token: str, what: str, *, minimum: bool) -> Frequency | None:
    keyword = _keyword(token, minimum)
    if keyword is not None:
        return ZERO_FREQUENCY if keyword == "min" else None
    try:
        percent = units.parse_percent(token)
    except units.UnitError as exc:
        raise units.UnitError(f"{what}: {exc} (or one of {_KEYWORD_HELP})") from None
    if percent > 100:
        raise units.UnitError(f"{what} {token!r} is over 100 %; valid: 0..100 or {_KEYWORD_HELP}")
    return Frequency(percent=percent)


def _text_age(token: str, what: str, *, minimum: bool) -> Age | None:
    keyword = _keyword(token, minimum)
    if keyword is not None:
        return ZERO_AGE if keyword == "min" else None
    try:
        return Age(us=units.parse_duration_us(token))
    except units.UnitError as exc:
        raise units.UnitError(f"{what}: {exc} (or one of {_KEYWORD_HELP})") from None


# --- JSON form (damo) -------------------------------------------------------

_SCHEME_KEYS = (
    "action",
    "access_pattern",
    "apply_interval_us",
    "quotas",
    "watermarks",
    "filters",
    "name",
    "dests",
    "target_nid",
    "stats",
    "tried_regions",
    "tried_bytes",
)
_IGNORED_SCHEME_KEYS = ("stats", "tried_regions", "tried_bytes")


class _JsonError(Exception):
    def __init__(self, path: str, message: str):
        super().__init__(f"{path}: {message}")


def parse_schemes_json(data: str | Any, source: str = "<argument>") -> tuple[SchemeSpec, ...]:
    """Parse damo's JSON scheme form (a list of schemes, one scheme, or damo's kdamonds form)."""
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except json.JSONDecodeError as exc:
            raise SchemeSyntaxError(
                f"{source}:{exc.lineno}: invalid JSON ({exc.msg}, column {exc.colno})"
            ) from None
    try:
        entries = _scheme_entries(data)
        return tuple(_json_scheme(entry, path, f"{source}:{path}") for path, entry in entries)
    except _JsonError as exc:
        raise SchemeSyntaxError(f"{source}: {exc}") from None
    except (units.UnitError, ConfigError) as exc:
        raise SchemeSyntaxError(f"{source}: {exc}") from None


def _scheme_entries(data: Any) -> list[tuple[str, Any]]:
    if isinstance(data, list):
        return [(f"[{i}]", entry) for i, entry in enumerate(data)]
    if isinstance(data, dict):
        if "kdamonds" in data:
            entries = []
            for k, kdamond in enumerate(data["kdamonds"]):
                for c, ctx in enumerate(kdamond.get("contexts", [])):
                    for s, scheme in enumerate(ctx.get("schemes", [])):
                        entries.append((f"kdamonds[{k}].contexts[{c}].schemes[{s}]", scheme))
            return entries
        if "schemes" in data:
            return [(f"schemes[{i}]", entry) for i, entry in enumerate(data["schemes"])]
        if "action" in data or "access_pattern" in data:
            return [("", data)]
    raise _JsonError(
        "(top level)",
        "expected a list of schemes, one scheme object, {'schemes': [...]} or damo's "
        "{'kdamonds': [...]}",
    )


def _json_scheme(entry: Any, path: str, where: str) -> SchemeSpec:
    if not isinstance(entry, dict):
        raise _JsonError(path, f"a scheme must be an object, not {type(entry).__name__}")
    unknown = sorted(set(entry) - set(_SCHEME_KEYS))
    if unknown:
        raise _JsonError(path, f"unknown key(s) {unknown}; valid: {', '.join(_SCHEME_KEYS)}")
    action = entry.get("action", "stat")
    if action not in ACTIONS:
        raise _JsonError(
            f"{path}.action", f"unknown action {action!r}; valid: {', '.join(ACTIONS)}"
        )
    if entry.get("dests"):
        raise _JsonError(f"{path}.dests", "migration destinations are not supported")
    if entry.get("target_nid") not in (None, -1):
        raise _JsonError(f"{path}.target_nid", "target_nid is not supported (no migrate actions)")
    pattern = entry.get("access_pattern", {})
    if not isinstance(pattern, dict):
        raise _JsonError(f"{path}.access_pattern", "must be an object")
    sizes = _pair(pattern, "sz_bytes", f"{path}.access_pattern")
    freqs = _pair(pattern, "nr_accesses", f"{path}.access_pattern")
    ages = _pair(pattern, "age", f"{path}.access_pattern")
    p = f"{path}.access_pattern"
    try:
        return SchemeSpec(
            action=action,
            sz_min=_json_size(sizes[0], f"{p}.sz_bytes.min", minimum=True),
            sz_max=_json_size(sizes[1], f"{p}.sz_bytes.max", minimum=False),
            freq_min=_json_freq(freqs[0], f"{p}.nr_accesses.min", minimum=True),
            freq_max=_json_freq(freqs[1], f"{p}.nr_accesses.max", minimum=False),
            age_min=_json_age(ages[0], f"{p}.age.min", minimum=True),
            age_max=_json_age(ages[1], f"{p}.age.max", minimum=False),
            quotas=_json_quotas(entry.get("quotas"), f"{path}.quotas"),
            watermarks=_json_watermarks(entry.get("watermarks"), f"{path}.watermarks"),
            filters=tuple(
                _json_filter(f, f"{path}.filters[{i}]")
                for i, f in enumerate(entry.get("filters") or [])
            ),
            apply_interval_us=_json_duration_us(
                entry.get("apply_interval_us", 0), f"{path}.apply_interval_us"
            ),
            name=str(entry.get("name", "")),
            source=where,
        )
    except ConfigError as exc:
        raise _JsonError(path, str(exc)) from None


def _pair(obj: dict[str, Any], key: str, path: str) -> tuple[Any, Any]:
    value = obj.get(key, {"min": "min", "max": "max"})
    if not isinstance(value, dict) or set(value) - {"min", "max"}:
        raise _JsonError(f"{path}.{key}", "must be an object with 'min' and 'max'")
    return value.get("min", "min"), value.get("max", "max")


def _json_keyword(value: Any, minimum: bool) -> str | None:
    if isinstance(value, str):
        return _keyword(value.strip(), minimum)
    return None


def _json_number(value: Any, path: str) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _JsonError(path, f"expected a number or a string, got {value!r}")
    if value < 0:
        raise _JsonError(path, f"{value} is negative; only values >= 0 are valid")
    return Fraction(str(value))


def _json_size(value: Any, path: str, *, minimum: bool) -> int | None:
    keyword = _json_keyword(value, minimum)
    if keyword is not None:
        return 0 if keyword == "min" else None
    if isinstance(value, str):
        try:
            return units.parse_size(value)
        except units.UnitError as exc:
            raise _JsonError(path, f"{exc} (or one of {_KEYWORD_HELP})") from None
    number = _json_number(value, path)
    if number.denominator != 1:
        raise _JsonError(path, f"size {value} is not a whole number of bytes")
    return int(number)


def _json_freq(value: Any, path: str, *, minimum: bool) -> Frequency | None:
    keyword = _json_keyword(value, minimum)
    if keyword is not None:
        return ZERO_FREQUENCY if keyword == "min" else None
    if isinstance(value, str):
        parts = value.split()
        if len(parts) == 2 and parts[1] == "samples":
            try:
                return Frequency(samples=int(parts[0].replace(",", "")))
            except ValueError:
                raise _JsonError(path, f"bad sample count {value!r}") from None
        try:
            percent = units.parse_percent(value)
        except units.UnitError as exc:
            raise _JsonError(
                path, f"{exc}; valid: '<n> %', '<n> samples' or {_KEYWORD_HELP}"
            ) from None
    else:
        percent = _json_number(value, path)
    if percent > 100:
        raise _JsonError(path, f"frequency {value!r} is over 100 %; valid: 0..100 %")
    return Frequency(percent=percent)


def _json_age(value: Any, path: str, *, minimum: bool) -> Age | None:
    keyword = _json_keyword(value, minimum)
    if keyword is not None:
        return ZERO_AGE if keyword == "min" else None
    if isinstance(value, str):
        parts = value.split()
        if len(parts) == 2 and parts[1] == "aggr_intervals":
            try:
                return Age(aggr_intervals=int(parts[0].replace(",", "")))
            except ValueError:
                raise _JsonError(path, f"bad aggregation interval count {value!r}") from None
    return Age(us=_json_duration_us(value, path))


def _json_duration_us(value: Any, path: str, *, scale_us: int = 1) -> int:
    """A duration; bare numbers are in units of ``scale_us`` microseconds (damo's rule)."""
    if isinstance(value, str):
        try:
            return units.parse_duration_us(value, require_unit=False) * (
                scale_us if value.strip().replace(",", "").isdigit() else 1
            )
        except units.UnitError as exc:
            raise _JsonError(path, str(exc)) from None
    number = _json_number(value, path) * scale_us
    if number.denominator != 1:
        raise _JsonError(path, f"duration {value} is not a whole number of microseconds")
    return int(number)


def _json_ms(value: Any, path: str) -> int:
    if isinstance(value, str) and value.strip() == "max":
        return ULONG_MAX
    us = _json_duration_us(value, path, scale_us=1000)
    if us % 1000:
        raise _JsonError(path, f"{value!r} is not a whole number of milliseconds")
    return us // 1000


def _json_permil(value: Any, path: str) -> int:
    """damo's permil values: a plain number is permil, ``"<n> %"`` is percent."""
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("%"):
            try:
                permil = units.parse_percent(text) * 10
            except units.UnitError as exc:
                raise _JsonError(path, str(exc)) from None
        else:
            try:
                permil = Fraction(text.replace(",", ""))
            except ValueError:
                raise _JsonError(path, f"{value!r} is not a permil number or '<n> %'") from None
    else:
        permil = _json_number(value, path)
    if permil.denominator != 1 or permil < 0:
        raise _JsonError(path, f"{value!r} is not a whole, non-negative permil value")
    return int(permil)


def _object(value: Any, path: str, allowed: tuple[str, ...]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _JsonError(path, "must be an object")
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise _JsonError(path, f"unknown key(s) {unknown}; valid: {', '.join(allowed)}")
    return value


def _json_quotas(value: Any, path: str) -> Quotas:
    data = _object(
        value,
        path,
        (
            "time_ms",
            "sz_bytes",
            "reset_interval_ms",
            "weights",
            "goals",
            "goal_tuner",
            "effective_sz_bytes",
            "fail_charge_num",
            "fail_charge_denom",
        ),
    )
    if data.get("goals"):
        raise _JsonError(f"{path}.goals", "quota goals are not supported")
    for key in ("fail_charge_num", "fail_charge_denom"):
        if str(data.get(key, "0")).strip() not in ("0", ""):
            raise _JsonError(f"{path}.{key}", "fail charge ratios are not supported")
    weights = _object(
        data.get("weights"), f"{path}.weights", ("sz_permil", "nr_accesses_permil", "age_permil")
    )
    return Quotas(
        ms=_json_ms(data.get("time_ms", 0), f"{path}.time_ms"),
        bytes=_json_size(data.get("sz_bytes", 0), f"{path}.sz_bytes", minimum=True) or 0,
        reset_interval_ms=_json_ms(data.get("reset_interval_ms", 0), f"{path}.reset_interval_ms"),
        weight_sz_permil=_json_permil(weights.get("sz_permil", 0), f"{path}.weights.sz_permil"),
        weight_nr_accesses_permil=_json_permil(
            weights.get("nr_accesses_permil", 0), f"{path}.weights.nr_accesses_permil"
        ),
        weight_age_permil=_json_permil(weights.get("age_permil", 0), f"{path}.weights.age_permil"),
    )


def _json_watermarks(value: Any, path: str) -> Watermarks:
    data = _object(
        value, path, ("metric", "interval_us", "high_permil", "mid_permil", "low_permil")
    )
    metric = data.get("metric", "none")
    if metric not in WATERMARK_METRICS:
        raise _JsonError(
            f"{path}.metric", f"unknown metric {metric!r}; valid: {', '.join(WATERMARK_METRICS)}"
        )
    return Watermarks(
        metric=metric,
        interval_us=_json_duration_us(data.get("interval_us", 0), f"{path}.interval_us"),
        high=_json_permil(data.get("high_permil", 0), f"{path}.high_permil"),
        mid=_json_permil(data.get("mid_permil", 0), f"{path}.mid_permil"),
        low=_json_permil(data.get("low_permil", 0), f"{path}.low_permil"),
    )


def _json_bool(value: Any, path: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("y", "yes", "true"):
        return True
    if isinstance(value, str) and value.lower() in ("n", "no", "false"):
        return False
    raise _JsonError(path, f"{value!r} is not a boolean; valid: true, false")


def _json_filter(value: Any, path: str) -> Filter:
    data = _object(
        value,
        path,
        (
            "filter_type",
            "matching",
            "allow",
            "filter_pass",
            "memcg_path",
            "address_range",
            "damon_target_idx",
            "hugepage_size",
            "probe_hits_wsum_range",
        ),
    )
    filter_type = data.get("filter_type")
    if filter_type not in FILTER_TYPES:
        raise _JsonError(
            f"{path}.filter_type",
            f"unknown or unsupported filter type {filter_type!r}; valid: {', '.join(FILTER_TYPES)}",
        )
    allow = data.get("allow", data.get("filter_pass", False))
    address = data.get("address_range") or {}
    if filter_type == "addr":
        address = _object(address, f"{path}.address_range", ("start", "end"))
    try:
        return Filter(
            type=filter_type,
            matching=_json_bool(data.get("matching", True), f"{path}.matching"),
            allow=_json_bool(allow, f"{path}.allow"),
            memcg_path=data.get("memcg_path") or "",
            addr_start=_json_size(
                address.get("start", 0), f"{path}.address_range.start", minimum=True
            )
            or 0,
            addr_end=_json_size(address.get("end", 0), f"{path}.address_range.end", minimum=True)
            or 0,
            target_idx=int(str(data.get("damon_target_idx") or 0).replace(",", "")),
        )
    except ConfigError as exc:
        raise _JsonError(path, str(exc)) from None


# --- entry points -----------------------------------------------------------


def parse_schemes(text: str, source: str = "<argument>") -> tuple[SchemeSpec, ...]:
    """Parse either form: JSON when the text starts with ``[`` or ``{``, else the text form."""
    stripped = text.lstrip()
    if stripped.startswith(("[", "{")):
        return parse_schemes_json(text, source)
    return parse_schemes_text(text, source)


def load_schemes(path: Path | str) -> tuple[SchemeSpec, ...]:
    """Read and parse a scheme file (``.damos`` text or ``.json``)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise SchemeSyntaxError(f"cannot read scheme file {path}: {exc.strerror}") from None
    return parse_schemes(text, str(path))


def schemes_from_argument(value: str) -> tuple[SchemeSpec, ...]:
    """A command-line value: a scheme file if such a file exists, else inline scheme text."""
    path = Path(value)
    if "\n" not in value and path.is_file():
        return load_schemes(path)
    looks_like_a_path = len(value.split()) == 1 and (
        "/" in value or path.suffix in (".damos", ".json", ".txt")
    )
    if looks_like_a_path:
        raise SchemeSyntaxError(f"scheme file {value!r} does not exist")
    return parse_schemes(value, "<argument>")
