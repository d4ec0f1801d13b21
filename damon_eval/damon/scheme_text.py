"""The seed's text form of schemes: one scheme per line, ``#`` starts a comment::

    <min size> <max size> <min frequency %> <max frequency %> <min age> <max age> <action>

``min`` and ``max`` stand for the smallest and largest value; ``null`` (the
seed's spelling) means ``min`` in a min position and ``max`` in a max position
(see docs/schemes.md).
"""

from __future__ import annotations

from damon_eval.damon import units
from damon_eval.damon.model import ACTIONS
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

TEXT_FIELDS = (
    "<min size>",
    "<max size>",
    "<min frequency %>",
    "<max frequency %>",
    "<min age>",
    "<max age>",
    "<action>",
)


def format_scheme_text(spec: SchemeSpec) -> str:
    """The seed's one-line form, with keywords: ``4K max min 5 7s max pageout``."""
    if not spec.text_expressible:
        raise ConfigError(
            f"scheme {spec.describe()} has quotas, watermarks, filters, an apply interval "
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
            size(spec.sz_min),
            size(spec.sz_max),
            freq(spec.freq_min),
            freq(spec.freq_max),
            age(spec.age_min),
            age(spec.age_max),
            spec.action,
        )
    )


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


def _text_size(token: str, what: str, *, minimum: bool) -> int | None:
    keyword = bound_keyword(token, minimum)
    if keyword is not None:
        return 0 if keyword == "min" else None
    try:
        return units.parse_size(token)
    except units.UnitError as exc:
        raise units.UnitError(f"{what}: {exc} (or one of {KEYWORD_HELP})") from None


def _text_freq(token: str, what: str, *, minimum: bool) -> Frequency | None:
    keyword = bound_keyword(token, minimum)
    if keyword is not None:
        return ZERO_FREQUENCY if keyword == "min" else None
    try:
        percent = units.parse_percent(token)
    except units.UnitError as exc:
        raise units.UnitError(f"{what}: {exc} (or one of {KEYWORD_HELP})") from None
    if percent > 100:
        raise units.UnitError(f"{what} {token!r} is over 100 %; valid: 0..100 or {KEYWORD_HELP}")
    return Frequency(percent=percent)


def _text_age(token: str, what: str, *, minimum: bool) -> Age | None:
    keyword = bound_keyword(token, minimum)
    if keyword is not None:
        return ZERO_AGE if keyword == "min" else None
    try:
        return Age(us=units.parse_duration_us(token))
    except units.UnitError as exc:
        raise units.UnitError(f"{what}: {exc} (or one of {KEYWORD_HELP})") from None
