"""Headline numbers and sentences, and their JSON, reST and HTML forms."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

from damon_eval.analysis.templates import render_template


@dataclass(frozen=True, slots=True)
class Number:
    """One headline number with how it was obtained."""

    key: str
    text: str  # as printed, e.g. "31.29"
    derivation: str
    workload: str = ""
    ci95: tuple[float, float] | None = None  # of the number as stated (speedups negated)
    significant: bool | None = None  # Welch vs orig; None: no test (n < 2)
    p: float | None = None

    @property
    def value(self) -> float:
        return float(self.text)

    def uncertainty(self) -> str:
        """`` (95% CI a … b%, significant vs orig, p=…)``, or "" without repeats.

        A number with a CI but no test (a share of one overhead in another) gets
        `` (95% CI a … b%)``.
        """
        if self.ci95 is None:
            return ""
        low, high = self.ci95
        if self.significant is None and self.p is None:
            return f" (95% CI {low:.2f} … {high:.2f}%)"
        verdict = "significant" if self.significant else "not significant"
        p_text = "" if self.p is None else f", p={self.p:.2g}"
        return f" (95% CI {low:.2f} … {high:.2f}%, {verdict} vs orig{p_text})"

    @property
    def negative(self) -> bool:
        return self.text.startswith("-")

    def stated(self) -> str:
        """``"12.34% (…)"``; a negative number as its magnitude with the CI flipped,
        for sentences whose verb carries the sign ("slows down by 2.00%")."""
        if not self.negative:
            return f"{self.text}%{self.uncertainty()}"
        ci = None if self.ci95 is None else (-self.ci95[1], -self.ci95[0])
        return replace(self, text=self.text[1:], ci95=ci).stated()

    def signed(self) -> str:
        """``"+0.40% (…)"``: the sign kept, for a number whose direction is not known."""
        sign = "" if self.negative else "+"
        return f"{sign}{self.text}%{self.uncertainty()}"


@dataclass(frozen=True, slots=True)
class Section:
    title: str
    sentences: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Headlines:
    numbers: tuple[Number, ...]
    sections: tuple[Section, ...]
    skipped: tuple[str, ...]

    def number(self, key: str) -> Number:
        for number in self.numbers:
            if number.key == key:
                return number
        raise KeyError(f"no headline number {key!r}; have: {', '.join(self.keys())}")

    def keys(self) -> list[str]:
        return [n.key for n in self.numbers]

    def text(self) -> str:
        return "\n\n".join(" ".join(s.sentences) for s in self.sections)

    def to_dict(self) -> dict:
        return {
            "numbers": {
                n.key: {
                    "value": n.value,
                    "text": n.text,
                    "derivation": n.derivation,
                    **({"workload": n.workload} if n.workload else {}),
                    **({"ci95": list(n.ci95)} if n.ci95 is not None else {}),
                    **({"significant": n.significant} if n.significant is not None else {}),
                    **({"p": n.p} if n.p is not None else {}),
                }
                for n in self.numbers
            },
            "sections": [{"title": s.title, "sentences": list(s.sentences)} for s in self.sections],
            "skipped": list(self.skipped),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def to_rst(self, title: str = "Results in brief") -> str:
        lines = [title, "=" * len(title), ""]
        for section in self.sections:
            lines += [section.title, "-" * len(section.title), ""]
            lines += [*_wrap(" ".join(section.sentences)), ""]
        if self.skipped:
            lines += ["Not stated (missing data):", ""]
            lines += [f"- {reason}" for reason in self.skipped] + [""]
        return "\n".join(lines)

    def to_html(self) -> str:
        return render_template("headlines.html.j2", headlines=self)


def _wrap(text: str, width: int = 79) -> list[str]:
    lines: list[str] = []
    line = ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    if line:
        lines.append(line)
    return lines
