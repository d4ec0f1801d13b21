"""damo's JSON form of schemes (``damo --schemes``, ``perf/schemes/*.json``).

:func:`parse_schemes_json` reads a list of schemes, one scheme, or damo's
kdamonds form; :func:`format_damo_json` writes one scheme with exact values
(see docs/schemes.md).
"""

from __future__ import annotations

import json
from fractions import Fraction
from typing import Any

from damon_eval.damon import units
from damon_eval.damon.model import (
    ACTIONS,
    FILTER_TYPES,
    ULONG_MAX,
    WATERMARK_METRICS,
    Filter,
    Quotas,
    Watermarks,
)
from damon_eval.damon.scheme_spec import (
    KEYWORD_HELP,
    ZERO_AGE,
    ZERO_FREQUENCY,
    Age,
    Frequency,
    SchemeSpec,
    bound_keyword,
)
from damon_eval.errors import ConfigError, SchemeSyntaxError


def format_damo_json(spec: SchemeSpec) -> dict[str, Any]:
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

    quotas = spec.quotas
    return {
        "action": spec.action,
        "access_pattern": {
            "sz_bytes": {"min": size(spec.sz_min), "max": size(spec.sz_max)},
            "nr_accesses": {"min": freq(spec.freq_min), "max": freq(spec.freq_max)},
            "age": {"min": age(spec.age_min), "max": age(spec.age_max)},
        },
        "apply_interval_us": units.format_duration(spec.apply_interval_us),
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
            "metric": spec.watermarks.metric,
            "interval_us": units.format_duration(spec.watermarks.interval_us),
            "high_permil": spec.watermarks.high,
            "mid_permil": spec.watermarks.mid,
            "low_permil": spec.watermarks.low,
        },
        "filters": [_filter_to_damo(f) for f in spec.filters],
    }


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
        return bound_keyword(value.strip(), minimum)
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
            raise _JsonError(path, f"{exc} (or one of {KEYWORD_HELP})") from None
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
                path, f"{exc}; valid: '<n> %', '<n> samples' or {KEYWORD_HELP}"
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
