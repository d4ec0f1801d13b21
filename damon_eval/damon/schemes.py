"""Schemes as a run uses them: read from a file or argument in either form, and
resolved for the run's monitoring intervals.

:func:`parse_schemes` takes the seed's text form
(:mod:`damon_eval.damon.scheme_text`) or damo's JSON form
(:mod:`damon_eval.damon.scheme_damo`); :func:`resolve_schemes` gives each
:class:`~damon_eval.damon.scheme_spec.SchemeSpec` its raw values as a
:class:`ResolvedScheme`, so a result can always say what ran.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from damon_eval.damon.model import MonitoringAttrs, Scheme
from damon_eval.damon.scheme_damo import parse_schemes_json
from damon_eval.damon.scheme_spec import SchemeSpec
from damon_eval.damon.scheme_text import format_scheme_text, parse_schemes_text
from damon_eval.damon.sysfs_layout import scheme_sysfs_files
from damon_eval.errors import SchemeSyntaxError


@dataclass(frozen=True, slots=True)
class ResolvedScheme:
    """A scheme's human spec and the raw values it became for ``attrs``, side by side."""

    spec: SchemeSpec
    attrs: MonitoringAttrs
    raw: Scheme

    def to_sysfs_dict(self) -> dict[str, int | str]:
        """Files of the scheme's sysfs directory (relative paths) and their values."""
        return scheme_sysfs_files(self.raw)

    def to_dict(self) -> dict[str, Any]:
        """Both forms plus the intervals used: what a result records about its schemes."""
        return {
            "source": self.spec.source,
            "text": format_scheme_text(self.spec) if self.spec.text_expressible else None,
            "human": self.spec.to_dict(),
            "intervals": {"sample_us": self.attrs.sample_us, "aggr_us": self.attrs.aggr_us},
            "raw": self.raw.to_dict(),
        }


def resolve_schemes(
    specs: Sequence[SchemeSpec], attrs: MonitoringAttrs
) -> tuple[ResolvedScheme, ...]:
    """Resolve every spec for the same intervals."""
    return tuple(ResolvedScheme(spec, attrs, spec.to_raw(attrs)) for spec in specs)


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
