"""prcl's sentences are gated on significance like ethp's, and best cases are chosen
among the significant workloads and named with their CI (fixture runs, 3 repeats)."""

from __future__ import annotations

import pytest

from damon_eval.analysis.headlines import compute_headlines
from damon_eval.analysis.tables import table_from_samples

STEADY, NOISY = "s/steady", "s/noisy"
BASE = [1000.0, 1002.0, 998.0]
CLEAR_DROP = [700.0, 701.0, 699.0]  # -30 %, significant
CLEAR_RISE = [1100.0, 1101.0, 1099.0]  # +10 %, significant
UNCLEAR = [990.0, 1200.0, 800.0]  # -1 %, not significant
NOISY_BASE = [1000.0, 1500.0, 500.0]
NOISY_DROP = [400.0, 900.0, 100.0]  # -53 %: larger, but not significant


def tables(cells: dict[str, dict[tuple[str, str], list[float]]], configs=("orig", "prcl")):
    out = {}
    for metric, samples in cells.items():
        workloads = list(dict.fromkeys(w for w, _ in samples))
        out[metric] = table_from_samples(metric, samples, workloads=workloads, configs=configs)
    return out


def prcl_one_workload(runtime, memory, rss=CLEAR_DROP):
    return compute_headlines(
        tables(
            {
                "runtime": {(STEADY, "orig"): BASE, (STEADY, "prcl"): runtime},
                "memused.avg": {(STEADY, "orig"): BASE, (STEADY, "prcl"): memory},
                "rss.avg": {(STEADY, "orig"): BASE, (STEADY, "prcl"): rss},
            }
        )
    )


def section(headlines, title):
    return " ".join(next(s for s in headlines.sections if s.title == title).sentences)


def test_significant_prcl_keeps_the_seeds_sentences():
    headlines = prcl_one_workload(CLEAR_RISE, CLEAR_DROP)
    text = section(headlines, "Proactive Reclamation")
    assert "In total, 'prcl' incurred 10.00% (95% CI " in text
    assert "runtime overhead while achieving 30.00% (95% CI " in text
    assert "In total, 30.00% (95% CI " in text and "of residential sets were reduced." in text
    assert "not significant" not in text and "cannot be concluded" not in text


def test_non_significant_memory_reduction_is_not_claimed():
    headlines = prcl_one_workload(CLEAR_RISE, UNCLEAR)
    text = section(headlines, "Proactive Reclamation")
    number = headlines.number("prcl_memory_reduction_pct")
    assert number.significant is False
    low, high = number.ci95
    assert "while achieving" not in text
    assert (
        f"but its system memory usage reduction (+{number.text}% (95% CI {low:.2f} … "
        f"{high:.2f}%, not significant vs orig" in text
    )
    assert "is not significantly different from zero, so no reduction can be concluded." in text
    # the best case says it too, in the summary the reader sees first
    summary = section(headlines, "Summary")
    assert "so no reduction can be concluded for s/steady." in summary
    assert f"'prcl' reduces {headlines.number('prcl_best_rss_reduction_pct').text}%" in summary


def test_non_significant_runtime_overhead_is_not_claimed():
    text = section(prcl_one_workload(UNCLEAR, CLEAR_DROP), "Proactive Reclamation")
    assert "In total, 'prcl' achieved 30.00% (95% CI " in text
    assert "its runtime overhead (" in text and "so no slowdown can be concluded." in text
    assert "incurred" not in text.split("With ")[0]
    both = section(prcl_one_workload(UNCLEAR, UNCLEAR), "Proactive Reclamation")
    assert "neither a cost nor a saving can be concluded." in both
    assert "so neither a reduction nor a slowdown can be concluded for s/steady." in both


def test_non_significant_rss_reduction_is_not_claimed():
    text = section(prcl_one_workload(CLEAR_RISE, CLEAR_DROP, UNCLEAR), "Proactive Reclamation")
    assert "of residential sets were reduced" not in text
    assert "In total, 'prcl' shows no significant residential set reduction (+" in text
    assert "so no reduction can be concluded." in text


def two_workloads(noisy_rss=NOISY_DROP):
    rows = {
        "runtime": {STEADY: CLEAR_RISE, NOISY: CLEAR_RISE},
        "memused.avg": {STEADY: CLEAR_DROP, NOISY: CLEAR_DROP},
        "rss.avg": {STEADY: CLEAR_DROP, NOISY: noisy_rss},
    }
    cells = {}
    for metric, by_workload in rows.items():
        cells[metric] = {}
        for workload, prcl in by_workload.items():
            base = NOISY_BASE if (workload, metric) == (NOISY, "rss.avg") else BASE
            cells[metric][(workload, "orig")] = base
            cells[metric][(workload, "prcl")] = prcl
    return compute_headlines(tables(cells))


def test_prcl_best_case_is_the_best_significant_one_named_with_its_ci():
    headlines = two_workloads()
    best = headlines.number("prcl_best_rss_reduction_pct")
    # the noisy workload's 53 % is larger, but indistinguishable from noise
    assert best.workload == STEADY and best.text == "30.00" and best.significant is True
    low, high = best.ci95
    sentence = f"With {STEADY}, 'prcl' reduced 30.00% (95% CI {low:.2f} … {high:.2f}%, significant"
    assert sentence in headlines.text()
    assert f"in the best case ({STEADY})." in section(headlines, "Summary")


def test_no_significant_best_case_says_so():
    # the noisy workload alone: no workload's reduction is significant
    cells = {
        "runtime": {(NOISY, "orig"): BASE, (NOISY, "prcl"): CLEAR_RISE},
        "memused.avg": {(NOISY, "orig"): BASE, (NOISY, "prcl"): CLEAR_DROP},
        "rss.avg": {(NOISY, "orig"): NOISY_BASE, (NOISY, "prcl"): NOISY_DROP},
    }
    headlines = compute_headlines(tables(cells))
    assert "prcl_best_rss_reduction_pct" not in set(headlines.keys())
    sentence = (
        f"No workload shows a significant 'prcl' residential set reduction (the largest: "
        f"'{NOISY}', +53.33% (95% CI "
    )
    assert sentence in section(headlines, "Proactive Reclamation")
    assert "so there is no best case to state." in section(headlines, "Summary")
    assert any(r.startswith("prcl best case: no workload") for r in headlines.skipped)


def test_thp_best_case_is_the_best_significant_speedup_named_with_its_ci():
    fast = [700.0, 701.0, 699.0]  # 30 % speedup, significant
    erratic = [100.0, 900.0, 500.0]  # 50 % speedup on average, not significant
    cells = {
        "runtime": {
            (STEADY, "orig"): BASE,
            (STEADY, "thp"): fast,
            (NOISY, "orig"): BASE,
            (NOISY, "thp"): erratic,
        },
        "memused.avg": {
            (STEADY, "orig"): BASE,
            (STEADY, "thp"): CLEAR_RISE,
            (NOISY, "orig"): BASE,
            (NOISY, "thp"): [1200.0, 1201.0, 1199.0],
        },
    }
    headlines = compute_headlines(tables(cells, configs=("orig", "thp")))
    best = headlines.number("thp_best_speedup_pct")
    worst = headlines.number("thp_worst_memory_overhead_pct")
    assert (best.workload, best.text) == (STEADY, "30.00")
    assert (worst.workload, worst.text) == (NOISY, "20.00")
    low, high = best.ci95
    assert (
        f"It achieves 30.00% (95% CI {low:.2f} … {high:.2f}%, significant vs orig"
        in headlines.text()
    )
    assert f"speedup in the best case ('{STEADY}'), but 20.00% (95% CI " in headlines.text()
    assert f"memory overhead in the worst case ('{NOISY}')." in headlines.text()


@pytest.mark.parametrize("repeats", [1, 3])
def test_thp_without_a_significant_speedup_has_no_best_case_only_with_tests(repeats):
    erratic = [100.0, 900.0, 500.0][:repeats]
    cells = {
        "runtime": {(STEADY, "orig"): BASE[:repeats], (STEADY, "thp"): erratic},
        "memused.avg": {(STEADY, "orig"): BASE[:repeats], (STEADY, "thp"): CLEAR_RISE[:repeats]},
    }
    headlines = compute_headlines(tables(cells, configs=("orig", "thp")))
    text = headlines.text()
    if repeats == 1:  # means only, as the seed's tables: the largest, in the seed's words
        assert headlines.number("thp_best_speedup_pct").workload == STEADY
        assert "It achieves 90.00% speedup in the best case, but 10.00% memory" in text
    else:
        assert "thp_best_speedup_pct" not in set(headlines.keys())
        assert f"No workload shows a significant THP speedup (the largest: '{STEADY}'" in text
        assert "It incurs 10.00% (95% CI " in text and f"worst case ('{STEADY}')." in text
