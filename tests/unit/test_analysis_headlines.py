"""Headline sentences computed from the seed's tables give the seed's numbers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from damon_eval.analysis.analyze import published_tables
from damon_eval.analysis.headlines import compute_headlines
from damon_eval.analysis.reference import load_published, published_metrics
from damon_eval.analysis.tables import table_from_samples

SEED_PATCH = Path("/work/shared/seed/damon-v18-documentation-patch.txt")

# Every headline number of the seed's eval.rst, with the key that states it.
SEED_NUMBERS = {
    "rec_runtime_overhead_pct": "0.94",
    "rec_memory_overhead_pct": "-0.25",
    "prec_runtime_overhead_pct": "1.10",
    "prec_memory_overhead_pct": "-3.09",
    "thp_speedup_pct": "6.20",
    "thp_memory_overhead_pct": "6.04",
    "thp_best_speedup_pct": "44.76",
    "thp_worst_memory_overhead_pct": "81.15",
    "ethp_speedup_pct": "3.76",
    "ethp_memory_overhead_pct": "4.15",
    "ethp_thp_memory_waste_removed_pct": "31.29",
    "ethp_thp_speedup_preserved_pct": "60.64",
    "ethp_thp_memory_waste_removed_pct_thp_best_case": "82.66",
    "ethp_thp_speedup_preserved_pct_thp_best_case": "52.85",
    "prcl_runtime_overhead_pct": "6.48",
    "prcl_memory_reduction_pct": "5.12",
    "prcl_rss_reduction_pct": "22.78",
    "prcl_best_rss_reduction_pct": "87.95",
    "prcl_best_memory_reduction_pct": "29.52",
    "prcl_best_runtime_overhead_pct": "2.15",
}


def recomputed_seed_tables():
    """The seed's tables recomputed from its per-workload means (not its percentages)."""
    out = {}
    for metric in published_metrics():
        published = load_published(metric)
        out[metric] = table_from_samples(
            metric,
            published.means_as_samples(),
            workloads=published.workloads,
            configs=published.configs,
            arithmetic="seed",
        )
    return out


@pytest.fixture(scope="module")
def seed_headlines():
    return compute_headlines(recomputed_seed_tables())


def test_printed_and_recomputed_tables_give_the_same_headlines(seed_headlines):
    printed = compute_headlines(published_tables())
    assert printed.to_dict() == seed_headlines.to_dict()


@pytest.mark.parametrize(("key", "text"), SEED_NUMBERS.items())
def test_seed_numbers(seed_headlines, key, text):
    assert seed_headlines.number(key).text == text


def test_best_cases_are_the_seeds(seed_headlines):
    assert seed_headlines.number("thp_best_speedup_pct").workload == "splash2x/ocean_ncp"
    assert seed_headlines.number("thp_worst_memory_overhead_pct").workload == "splash2x/ocean_ncp"
    assert seed_headlines.number("prcl_best_rss_reduction_pct").workload == "parsec3/freqmine"


def test_ratios_are_truncated_not_rounded(seed_headlines):
    # 3.76 / 6.20 = 60.645..., 23.66 / 44.76 = 52.859...: rounding would say 60.65 and 52.86
    assert round(3.76 / 6.20 * 100, 2) == 60.65
    assert seed_headlines.number("ethp_thp_speedup_preserved_pct").text == "60.64"
    assert round(23.66 / 44.76 * 100, 2) == 52.86
    assert seed_headlines.number("ethp_thp_speedup_preserved_pct_thp_best_case").text == "52.85"
    assert "3.76/6.20" in seed_headlines.number("ethp_thp_speedup_preserved_pct").derivation


SEED_SENTENCES = [
    "THP 'always' enabled policy achieves 6.20% speedup but incurs 6.04% memory overhead.",
    "It achieves 44.76% speedup in the best case, but 81.15% memory overhead in the worst case.",
    "In other words, 'ethp' removes 31.29% of THP memory waste while preserving 60.64% of THP "
    "speedup in total.",
    "In the case of the 'splash2x/ocean_ncp', 'ethp' removes 82.66% of THP memory waste while "
    "preserving 52.85% of THP speedup.",
    "In total, 22.78% of residential sets were reduced.",
]


@pytest.mark.parametrize("sentence", SEED_SENTENCES)
def test_sentences_as_in_the_seed(seed_headlines, sentence):
    assert sentence in seed_headlines.text()


@pytest.mark.skipif(not SEED_PATCH.is_file(), reason="the seed patch is not on this machine")
@pytest.mark.parametrize("sentence", SEED_SENTENCES)
def test_sentences_appear_in_the_seed_document(sentence):
    # The seed's eval.rst as lines "+text": rejoin, normalise spaces.
    lines = [line[1:] for line in SEED_PATCH.read_text().splitlines() if line.startswith("+")]
    document = re.sub(r"\s+", " ", " ".join(lines))
    assert sentence in document


def test_the_seeds_negative_overheads_are_worded_as_reductions(seed_headlines):
    # the seed's "incurs 0.94% runtime overhead and -0.25% memory space overhead" and
    # "increases system memory usage by only -0.25%": a negative overhead is a reduction
    text = seed_headlines.text()
    assert (
        "In total, DAMON virtual memory access recording feature ('rec') incurs 0.94% runtime "
        "overhead and reduces memory space usage by 0.25%." in text
    )
    assert (
        "DAMON reduces system memory usage by 0.25% and slows target workloads down by 0.94%."
        in text
    )
    assert (
        "The physical memory access recording ('prec') incurs 1.10% runtime overhead and "
        "reduces the memory footprint by 3.09%." in text
    )
    assert "-0.25%" not in text and "-3.09%" not in text
    # the numbers keep their sign
    assert seed_headlines.number("rec_memory_overhead_pct").text == "-0.25"


def test_json_rst_html(seed_headlines):
    data = seed_headlines.to_dict()
    assert data["numbers"]["ethp_thp_memory_waste_removed_pct"]["value"] == 31.29
    assert data["numbers"]["prcl_best_rss_reduction_pct"]["workload"] == "parsec3/freqmine"
    rst = seed_headlines.to_rst()
    assert "Efficient THP\n-------------" in rst
    assert max(len(line) for line in rst.splitlines()) <= 79
    assert "<h3>Proactive Reclamation</h3>" in seed_headlines.to_html()


def _tables(overheads):
    """Tables with orig = 100 and the given per-config overheads, per metric and workload."""
    out = {}
    for metric, by_workload in overheads.items():
        workloads = list(by_workload)
        configs = ["orig", *next(iter(by_workload.values()))]
        samples = {}
        for workload, per_config in by_workload.items():
            samples[(workload, "orig")] = [100.0]
            for config, pct in per_config.items():
                samples[(workload, config)] = [100.0 + pct]
        out[metric] = table_from_samples(metric, samples, workloads=workloads, configs=configs)
    return out


def test_missing_configurations_are_skipped_with_a_reason():
    tables = _tables({"runtime": {"s/a": {"rec": 1.0}}, "memused.avg": {"s/a": {"rec": 2.0}}})
    headlines = compute_headlines(tables)
    assert headlines.number("rec_runtime_overhead_pct").text == "1.00"
    assert any(reason.startswith("THP:") for reason in headlines.skipped)
    assert any(reason.startswith("prcl:") for reason in headlines.skipped)
    with pytest.raises(KeyError, match="no headline number 'thp_speedup_pct'"):
        headlines.number("thp_speedup_pct")


def test_thp_without_speedup_has_no_share():
    tables = _tables(
        {
            "runtime": {"s/a": {"thp": 2.0, "ethp": 1.0}},
            "memused.avg": {"s/a": {"thp": 5.0, "ethp": 2.0}},
        }
    )
    headlines = compute_headlines(tables)
    assert headlines.number("thp_speedup_pct").text == "-2.00"
    assert "ethp_thp_speedup_preserved_pct" not in set(headlines.keys())
    assert any("significant and positive" in reason for reason in headlines.skipped)
    # the text says why, worded for the sign: no "achieves -2.00% speedup"
    text = headlines.text()
    assert "-2.00%" not in text
    assert "THP 'always' enabled policy slows workloads down by 2.00% and incurs 5.00%" in text
    assert (
        "THP shows no speedup (it slows workloads down by 2.00%), so 'preserved speedup' is "
        "undefined in total." in text
    )


def test_prcl_best_case_is_largest_rss_reduction():
    tables = _tables(
        {
            "runtime": {"s/a": {"prcl": 1.0}, "s/b": {"prcl": 9.0}},
            "memused.avg": {"s/a": {"prcl": -50.0}, "s/b": {"prcl": -10.0}},
            "rss.avg": {"s/a": {"prcl": -20.0}, "s/b": {"prcl": -60.0}},
        }
    )
    headlines = compute_headlines(tables)
    assert headlines.number("prcl_best_rss_reduction_pct").workload == "s/b"
    assert headlines.number("prcl_best_memory_reduction_pct").text == "10.00"
    assert "With s/b, 'prcl' reduced 60.00% of residential sets" in headlines.text()
