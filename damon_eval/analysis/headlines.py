"""The evaluation document's result sentences, computed from the tables.

The seed derives its headline numbers from the ROUNDED table percentages and
TRUNCATES (not rounds) derived ratios to two decimals:

* 'ethp' removes ``trunc2((1 - ethp_mem / thp_mem) * 100)`` % of THP memory
  waste (1 - 4.15/6.04 -> 31.29) while preserving
  ``trunc2(ethp_speedup / thp_speedup * 100)`` % of THP speedup
  (3.76/6.20 = 60.645... -> 60.64; ocean_ncp 23.66/44.76 -> 52.85);
* speedups are the negated runtime overheads, reductions the negated memory
  overheads, all as printed (``%.2f``).

"Best" and "worst" cases (docs/analysis.md):

* THP's best case: the largest speedup (most negative runtime overhead);
  its worst case: the largest ``memused.avg`` overhead.  The per-workload
  'ethp' sentence is about THP's best-case workload.
* prcl's best case: the largest residential-set (``rss.avg``) reduction; the
  seed's parsec3/freqmine.
* With repeats, best and worst cases are chosen among the workloads whose
  difference from orig is significant (Welch); when none is, the text says so
  and names the largest with its CI instead.  Without any test (one value per
  cell, as the seed's tables), among all workloads.

A claim whose number is not significantly different from zero is not made:
the sentence says what cannot be concluded and why (every cell-derived number:
rec's and prec's overheads, THP's and ethp's speedup and memory overhead, ethp's
shares of THP's speedup and memory waste, prcl's overhead and reductions).  A
negative number is worded for its sign ("slows workloads down by 2.00%", never
"achieves -2.00% speedup"): :mod:`damon_eval.analysis.headline_claims`.  The
shares carry a delta-method CI (:func:`damon_eval.analysis.stats.share_ci95`)
but no test against orig.

Evaluative words of the seed ("only", "modest", "Interestingly") are left
out: the sentences state numbers.  Ties go to the first workload in table order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from damon_eval.analysis.headline_builder import KDAMOND_CPU, MEMORY, RSS, RUNTIME, Builder
from damon_eval.analysis.headline_model import Headlines, Number, Section
from damon_eval.analysis.headline_overheads import add_overheads
from damon_eval.analysis.headline_prcl import add_prcl
from damon_eval.analysis.headline_thp import add_thp
from damon_eval.analysis.tables import MetricTable

__all__ = [
    "KDAMOND_CPU",
    "MEMORY",
    "RSS",
    "RUNTIME",
    "TCG_CAVEAT",
    "Headlines",
    "Number",
    "Section",
    "compute_headlines",
]

# Why TCG changes what the numbers mean (docs/statistics.md): kdamond runs in the
# emulated guest too, so its cost is emulated; page counts are not.
# As measured in docs/tcg-vs-seed.md (the default campaign against the seed's totals).
TCG_CAVEAT = (
    "These runs used TCG (QEMU's software emulation): DAMON's own runtime overheads "
    "(rec, prec, and the runtime cost of ethp and prcl, kdamond CPU use) come out inflated, "
    "because kdamond is emulated along with the workload, and THP's speedup does not carry "
    "over, because TCG emulates no TLB for huge pages to spare (measured: thp ran slower "
    "here, faster in the seed); RSS and system memory reductions count pages and keep "
    "their sign."
)


def compute_headlines(tables: Mapping[str, MetricTable], accels: Sequence[str] = ()) -> Headlines:
    """Headline numbers and sentences from the runtime, memused.avg and rss.avg tables.

    ``tables`` maps metric names to tables (kdamond_cpu_util optional); ``accels``
    are the accelerators of the runs (``tcg`` puts the TCG caveat first).
    Sentences whose inputs are missing are listed in ``skipped``.
    """
    b = Builder(tables)
    summary: list[str] = [TCG_CAVEAT] if "tcg" in accels else []
    add_overheads(b, summary)
    add_thp(b, summary)
    add_prcl(b, summary)
    if summary:
        b.sections.insert(0, Section("Summary", tuple(summary)))
    return Headlines(tuple(b.numbers), tuple(b.sections), tuple(b.skipped))
