"""Tables from run tables: layout, missing cells, statistics columns, formats."""

from __future__ import annotations

import csv
import io
import re

import pytest
from results_factory import CampaignSpec, write_campaign

from damon_eval.analysis.errors import RunTableError, UnknownConfigError, UnknownMetricError
from damon_eval.analysis.runtable import collect_runs
from damon_eval.analysis.table_render import (
    CSV_COLUMNS,
    render,
    render_csv,
    render_html,
    render_text,
)
from damon_eval.analysis.tables import build_table, table_from_samples

WORKLOADS = ("synthetic/hotcold", "synthetic/zigzag", "debian/x264")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    spec = CampaignSpec(
        workloads=WORKLOADS,
        repeats=4,
        failures=tuple(("debian/x264", "ethp", r) for r in range(1, 5)),
    )
    write_campaign(root, spec)
    return collect_runs(root)


def test_layout_and_order(runs):
    table = build_table(runs, "runtime")
    assert table.configs == ("orig", "rec", "prec", "thp", "ethp", "prcl")
    assert table.workloads == ("debian/x264", "synthetic/hotcold", "synthetic/zigzag")
    lines = render_text(table).splitlines()
    assert lines[0].split() == [
        "runtime",
        "orig",
        "rec",
        "(overhead)",
        "prec",
        "(overhead)",
        "thp",
        "(overhead)",
        "ethp",
        "(overhead)",
        "prcl",
        "(overhead)",
    ]
    assert lines[4].startswith("total ")


def test_cell_whose_runs_all_failed(runs):
    table = build_table(runs, "runtime")
    cell = table.cell("debian/x264", "ethp")
    assert cell.estimate is None and cell.nr_failed == 4
    text = render_text(table)
    assert re.search(r" n/a +\(n/a\) ", text.splitlines()[1])
    assert table.summary_workloads == ("synthetic/hotcold", "synthetic/zigzag")
    assert (
        "# total over 2 of 3 workloads; without a value in every configuration: debian/x264" in text
    )
    assert "# failed runs (not in any mean): debian/x264 ethp x4" in text


def test_total_is_sum_of_means_and_overhead_of_sums(runs):
    table = build_table(runs, "memused.avg")
    orig = sum(table.cell(w, "orig").estimate.value for w in table.summary_workloads)
    prcl = sum(table.cell(w, "prcl").estimate.value for w in table.summary_workloads)
    assert table.summary["orig"].estimate.value == pytest.approx(orig)
    assert table.summary["prcl"].overhead_pct == pytest.approx((prcl / orig - 1) * 100)


def test_configs_selection(runs):
    table = build_table(runs, "runtime", ["prcl", "orig"])
    assert table.configs == ("orig", "prcl")
    with pytest.raises(
        UnknownConfigError, match="unknown configuration 'prlc'; the run table has: orig, rec"
    ):
        build_table(runs, "runtime", ["orig", "prlc"])


def test_unknown_and_absent_metrics(runs):
    with pytest.raises(
        UnknownMetricError, match=r"unknown metric 'rss'; valid: runtime, memused\.avg"
    ):
        build_table(runs, "rss")
    no_values = runs[runs["metric"] != "pgmajfault"]
    with pytest.raises(RunTableError, match="no values for metric 'pgmajfault'"):
        build_table(no_values, "pgmajfault")


def test_kdamond_table_has_no_baseline(runs):
    table = build_table(runs, "kdamond_cpu_util")
    assert table.baseline is None and table.configs == ("rec", "prec", "ethp", "prcl")
    text = render_text(table)
    assert "(overhead)" not in text
    assert text.splitlines()[4].startswith("average ")
    values = [table.cell(w, "rec").estimate.value for w in table.summary_workloads]
    assert table.summary["rec"].estimate.value == pytest.approx(sum(values) / len(values))


@pytest.mark.parametrize("metric", ["anon_huge.avg", "pswpout", "pswpin"])
def test_thp_and_swap_tables(runs, metric):
    table = build_table(runs, metric)
    assert table.baseline == "orig"
    text = render_text(table)
    if metric.startswith("pswp"):
        # orig never swaps: overhead against 0 is undefined
        assert "(n/a)" in text
        assert float(text.splitlines()[1].split()[-2]) > 0  # prcl swaps
    else:
        assert table.cell("debian/x264", "thp").estimate.value > 0


def test_csv_form(runs):
    table = build_table(runs, "runtime")
    rows = list(csv.DictReader(io.StringIO(render_csv(table))))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == 3 * 6 + 6
    thp = next(r for r in rows if r["workload"] == "synthetic/hotcold" and r["config"] == "thp")
    cell = table.cell("synthetic/hotcold", "thp")
    assert float(thp["value"]) == cell.estimate.value
    assert float(thp["stdev"]) == pytest.approx(cell.estimate.stdev)
    assert float(thp["welch_p"]) == cell.test.p
    assert thp["significant"] == str(cell.test.p < 0.05)
    assert thp["n"] == "4"
    failed = next(r for r in rows if r["workload"] == "debian/x264" and r["config"] == "ethp")
    assert failed["value"] == "" and failed["n"] == "0"
    assert "no successful run" in failed["note"] and "4 failed run(s) excluded" in failed["note"]


def test_significance_and_cv_markers():
    samples = {
        ("s/a", "orig"): [100.0, 101.0, 99.0],
        ("s/a", "thp"): [90.0, 91.0, 89.0],  # clearly faster
        ("s/a", "rec"): [100.0, 120.0, 80.0],  # noisy: CV 20 %
    }
    table = table_from_samples(
        "runtime", samples, workloads=["s/a"], configs=["orig", "rec", "thp"]
    )
    text = render_text(table, annotate=True)
    assert "(*-10.00*)" in text and "(0.00)" in text
    assert "# CV > 5 %: s/a rec (20.0 %)" in text
    html = render_html(table)
    assert "<strong>*-10.00*</strong>" in html
    assert 'class="value cv-warning"' in html
    assert "Welch p=" in html
    assert render_text(table).count("*") == 0


def test_single_repeat_says_so():
    samples = {("s/a", "orig"): [1.0], ("s/a", "rec"): [1.1]}
    table = table_from_samples("runtime", samples, workloads=["s/a"], configs=["orig", "rec"])
    assert "# n < 2 in every cell: no CI and no test" in render_text(table, annotate=True)
    rows = list(csv.DictReader(io.StringIO(render_csv(table))))
    assert rows[1]["ci95_low"] == "" and "n=1: no test" in rows[1]["note"]


def test_render_dispatch_and_errors(runs):
    table = build_table(runs, "runtime")
    assert render(table, "csv") == render_csv(table)
    with pytest.raises(Exception, match="unknown table format 'pdf'; valid: text, csv, html"):
        render(table, "pdf")
