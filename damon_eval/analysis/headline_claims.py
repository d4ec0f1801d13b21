"""Sentences that state a number only as far as its sign and significance allow.

Every computed sentence is built from :class:`Part` s, one per number: a part that
is significant against orig (or cannot be tested, as the seed's means) is stated
with the verb its sign calls for ("slows … down by 2.00%", "speeds … up by
2.00%"); one that is not is named with its signed value and CI, and the sentence
says what cannot be concluded ("so no slowdown can be concluded").  The seed's
own sentence is kept when every part is stated and none is negative.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from damon_eval.analysis.headline_model import Number


@dataclass(frozen=True, slots=True)
class Part:
    """One number of a sentence and the words for it."""

    number: Number
    rise: str  # the clause for a value >= 0; "{}" is the number with its CI
    fall: str  # the clause for a negative value; "{}" is its magnitude
    noun: str  # what is measured, for "its runtime overhead (…) is not significant"
    doubt: str  # what cannot be concluded when it is not significant: "slowdown"

    @property
    def clear(self) -> bool:
        return self.number.significant is not False

    def clause(self) -> str:
        template = self.fall if self.number.negative else self.rise
        return template.format(self.number.stated())


def join(items: Sequence[str], last: str = "and") -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {last} {items[-1]}"


def state(
    subject: str,
    parts: Sequence[Part],
    *,
    seed: str = "",
    lead: str = "",
    claim_tail: str = "",
    doubt_tail: str = "",
    both: str = "",
) -> str:
    """The sentence about ``subject`` and its ``parts``.

    ``seed``: the seed's sentence with one ``{}`` per part, used when all parts are
    stated and none is negative.  ``lead`` opens the sentence ("In total, ");
    ``claim_tail`` follows the stated clauses (" in the best case (w)"),
    ``doubt_tail`` what cannot be concluded (" for w").  ``both``: what cannot be
    concluded when no part is significant ("a cost nor a saving"; by default the
    parts' doubts).
    """
    clear = [p for p in parts if p.clear]
    unclear = [p for p in parts if not p.clear]
    if not unclear:
        if seed and not any(p.number.negative for p in parts):
            return seed.format(*(p.number.stated() for p in parts))
        return _capital(f"{lead}{subject} {join([p.clause() for p in clear])}{claim_tail}.")
    if clear:
        named = join([f"its {p.noun} ({p.number.signed()})" for p in unclear])
        verb = "is" if len(unclear) == 1 else "are"
        return _capital(
            f"{lead}{subject} {join([p.clause() for p in clear])}{claim_tail}, but {named} "
            f"{verb} not significantly different from zero, so {_doubt(unclear)} can be "
            f"concluded{doubt_tail}."
        )
    if len(unclear) == 1:
        (part,) = unclear
        return _capital(
            f"{lead}{subject} shows no significant {part.noun}{doubt_tail} "
            f"({part.number.signed()}), so no {part.doubt} can be concluded."
        )
    first, *rest = unclear
    named = [f"the {first.noun} of {subject} ({first.number.signed()})"]
    named += [f"its {p.noun} ({p.number.signed()})" for p in rest]
    what = f"neither {both}" if both else _doubt(unclear)
    return _capital(
        f"{lead}neither {join(named, 'nor')}{doubt_tail} is significantly different from "
        f"zero, so {what} can be concluded."
    )


def _doubt(parts: Sequence[Part]) -> str:
    if len(parts) == 1:
        return f"no {parts[0].doubt}"
    return "neither " + " nor ".join(f"a {p.doubt}" for p in parts)


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]
