"""Published versus reproduced numbers, with caveats stated."""

from __future__ import annotations

import csv
import io

import pytest

from damon_eval.analysis.compare import (
    NOT_IN_SEED,
    compare_with_published,
    render_comparison_csv,
    render_comparison_html,
    render_comparison_text,
)
from damon_eval.analysis.reference import load_published
from damon_eval.analysis.tables import table_from_samples


def _table(workloads, value=lambda w, c: 100.0, repeats=3):
    configs = ["orig", "rec", "prcl"]
    samples = {
        (w, c): [value(w, c) + d for d in (-1.0, 0.0, 1.0)[:repeats]]
        for w in workloads
        for c in configs
    }
    return table_from_samples("runtime", samples, workloads=workloads, configs=configs)


def test_rows_and_differences():
    published = load_published("runtime")
    # freqmine: published orig 291.050, rec 292.117 (0.37)
    table = _table(
        ["parsec3/freqmine", "synthetic/hotcold"],
        lambda w, c: {"orig": 200.0, "rec": 202.0, "prcl": 210.0}[c],
    )
    comparison = compare_with_published(table, published, accels=["tcg"], kernels=["6.12.57"])
    rec = next(r for r in comparison.rows if r.workload == "parsec3/freqmine" and r.config == "rec")
    assert rec.published_value == 292.117 and rec.published_overhead_pct == 0.37
    assert rec.reproduced_overhead_pct == pytest.approx(1.0)
    assert rec.diff_pp == pytest.approx(1.0 - 0.37)
    synthetic = [r for r in comparison.rows if r.workload == "synthetic/hotcold"]
    assert {r.note for r in synthetic} == {NOT_IN_SEED}
    assert all(r.published_value is None and r.diff_pp is None for r in synthetic)
    total = [r for r in comparison.rows if r.workload == "total"]
    assert len(total) == 3 and all("not comparable" in r.note for r in total)
    assert all(r.published_value is None for r in total)


def test_caveats_say_tcg_and_other_workloads():
    table = _table(["parsec3/freqmine", "synthetic/hotcold"])
    comparison = compare_with_published(
        table, load_published("runtime"), accels=["tcg"], kernels=["6.12.57+deb13-amd64"]
    )
    text = " ".join(comparison.caveats)
    assert "ran under TCG" in text and "the seed under KVM" in text
    assert "Workloads not in the seed: synthetic/hotcold" in text
    assert "24 of the seed's 25 workloads were not run" in text
    assert "6.12.57+deb13-amd64" in text
    kvm = compare_with_published(table, load_published("runtime"), accels=["kvm"])
    assert not any("TCG" in c for c in kvm.caveats)
    unknown = compare_with_published(table, load_published("runtime"), accels=[""])
    assert any("not recorded" in c for c in unknown.caveats)


def test_full_seed_set_compares_totals():
    published = load_published("memused.avg")
    samples = {key: [value[0]] * 2 for key, value in published.means_as_samples().items()}
    table = table_from_samples(
        "memused.avg", samples, workloads=published.workloads, configs=published.configs
    )
    comparison = compare_with_published(table, published, accels=["kvm"])
    total = next(r for r in comparison.rows if r.workload == "total" and r.config == "thp")
    assert total.published_overhead_pct == 6.04
    assert total.diff_pp == pytest.approx(0.0, abs=0.006)
    assert not any("not run" in c for c in comparison.caveats)


def test_renderings():
    comparison = compare_with_published(
        _table(["parsec3/freqmine", "synthetic/x"]), load_published("runtime"), accels=["tcg"]
    )
    text = render_comparison_text(comparison)
    assert text.splitlines()[0].split()[:3] == ["runtime", "config", "published"]
    assert "# This campaign ran under TCG" in text
    rows = list(csv.DictReader(io.StringIO(render_comparison_csv(comparison))))
    assert rows[0]["metric"] == "runtime" and rows[0]["published_value"] == "291.05"
    html = render_comparison_html(comparison)
    assert "<li>This campaign ran under TCG" in html and NOT_IN_SEED in html
