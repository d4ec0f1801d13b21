"""The analysis steps of the Snakemake pipeline, one function per rule.

``workflow/scripts/*.py`` are thin adapters that call exactly one of these.
Each step reads its inputs, writes its outputs atomically, and can run in
parallel with the others.
"""

from __future__ import annotations

import html
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jinja2

from damon_eval.analysis import adaptive, compare, headlines, plots, reference, table_render, tables
from damon_eval.analysis.failures import check_some_run_succeeded, summarize_failures
from damon_eval.analysis.runtable import (
    load_result,
    ok_values,
    read_runs_csv,
    runs_frame,
    runs_of_kernel,
    write_runs_csv,
)
from damon_eval.analysis.templates import TEMPLATE_DIR, standalone_page
from damon_eval.atomic import atomic_write_json, atomic_write_text
from damon_eval.config.repeats import AutoRepeats
from damon_eval.config.runkey import RunKey
from damon_eval.errors import DamonEvalError
from damon_eval.metrics import BASELINE_CONFIG, METRICS, SEED_TABLE_METRICS

log = logging.getLogger(__name__)

# Tables and plots the report shows for every campaign (when they have values).
REPORT_METRICS = (
    *SEED_TABLE_METRICS,
    "kdamond_cpu_util",
    "anon_huge.avg",
    "pswpout",
    "pswpin",
    "pgmajfault",
    "harness_rss.max",
)


def collect_step(result_paths: Sequence[Path], runs_csv: Path) -> None:
    """Exactly the campaign's planned runs into the tidy run table.

    ``runs_csv`` is ``<results>/summary/runs.csv``; every result must sit at
    its run's place below ``<results>/runs``.
    """
    results_dir = Path(runs_csv).parents[1]
    frame = runs_frame(load_result(Path(p), results_dir) for p in result_paths)
    write_runs_csv(frame, Path(runs_csv))
    log.info("%d runs, %d rows -> %s", len(result_paths), len(frame), runs_csv)


def _no_values_note(metric: str, reason: str) -> str:
    return f"{metric}: no table: {reason}\n"


def of_kernel(runs, kernel: str | None):
    """The runs of one kernel of a ``kernels:`` campaign (all runs for None or "").

    The configuration tables compare configurations on one kernel: mixing two
    kernels' runs in a cell would average them.
    """
    return runs_of_kernel(runs, kernel)


def metric_step(
    runs_csv: Path,
    metric: str,
    out_dir: Path,
    configs: Sequence[str],
    kernel: str | None = None,
    per_kernel: bool = False,
) -> None:
    """One metric's table (text, annotated text, CSV, HTML) and overhead plot (PNG, SVG)
    as ``tables/<metric>.*`` and ``plots/<metric>.*`` below ``out_dir``; with ``kernel``,
    of that kernel's runs only (a ``kernels:`` campaign's), and with ``per_kernel`` below
    ``tables/<kernel>/`` and ``plots/<kernel>/`` (the base kernel's are also the main ones)."""
    out_dir = Path(out_dir)
    if per_kernel and not kernel:
        raise DamonEvalError("metric_step: per_kernel tables need a kernel name")
    runs = of_kernel(read_runs_csv(Path(runs_csv)), kernel)
    present = [c for c in configs if c in set(runs["config"])]
    of_metric = ok_values(runs)
    of_metric = of_metric[of_metric["metric"] == metric]
    below = (kernel,) if per_kernel else ()
    stem_table = out_dir.joinpath("tables", *below, metric)
    stem_plot = out_dir.joinpath("plots", *below, metric)
    title = f"{metric} table, kernel {kernel}" if kernel else f"{metric} table"
    if of_metric.empty:
        # Honest empty outputs: e.g. kdamond_cpu_util when no run used DAMON.
        reason = "no successful run of this campaign measured it"
        note = _no_values_note(metric, reason)
        for suffix in (".txt", ".stats.txt"):
            atomic_write_text(Path(f"{stem_table}{suffix}"), note)
        atomic_write_text(Path(f"{stem_table}.csv"), "workload,config,value,overhead_pct\n")
        atomic_write_text(
            Path(f"{stem_table}.html"),
            standalone_page(
                metric,
                f"<section><h3>{html.escape(metric)}</h3><p>{html.escape(reason)}.</p></section>",
            ),
        )
        plots.plot_message(f"{metric}: {reason}", stem_plot)
        return
    configs_with_values = [c for c in present if c in set(of_metric["config"])]
    table = tables.build_table(
        runs, metric, configs_with_values, baseline=BASELINE_CONFIG, arithmetic="exact"
    )
    atomic_write_text(Path(f"{stem_table}.txt"), table_render.render_text(table))
    stats_text = table_render.render_text(table, annotate=True)
    atomic_write_text(Path(f"{stem_table}.stats.txt"), stats_text)
    atomic_write_text(Path(f"{stem_table}.csv"), table_render.render_csv(table))
    seed_form = html.escape(table_render.render_text(table))
    atomic_write_text(
        Path(f"{stem_table}.html"),
        standalone_page(
            title,
            table_render.render_html(table)
            + "<h4>In the evaluation document's fixed-width form</h4>"
            + f'<pre class="seed-form">{seed_form}</pre>',
        ),
    )
    plots.plot_table(table, stem_plot)


def summary_step(
    runs_csv: Path,
    out_dir: Path,
    configs: Sequence[str],
    campaign: str = "campaign",
    kernel: str | None = None,
) -> None:
    """Headline sentences and the comparison with the published tables, each opening with
    the failure box when runs failed; the box alone in ``failures.{json,txt,rst}``.
    With ``kernel`` (a ``kernels:`` campaign's base) the tables are of its runs; the
    failure box counts every kernel's."""
    out_dir = Path(out_dir)
    all_runs = read_runs_csv(Path(runs_csv))
    failures = summarize_failures(all_runs, campaign, configs)
    runs = of_kernel(all_runs, kernel)
    atomic_write_json(out_dir / "failures.json", failures.to_dict())
    atomic_write_text(out_dir / "failures.txt", failures.to_text())
    atomic_write_text(out_dir / "failures.rst", failures.to_rst())
    box_html = failures.to_html()
    box_text = failures.to_text() if failures.any else ""
    values = ok_values(runs)
    present = [c for c in configs if c in set(values["config"])]
    built = {}
    # the seed's three tables, and kdamond CPU use for the overhead sentences
    for metric in (*SEED_TABLE_METRICS, headlines.KDAMOND_CPU):
        if metric in set(values["metric"]):
            with_values = [
                c for c in present if c in set(values[values["metric"] == metric]["config"])
            ]
            built[metric] = tables.build_table(runs, metric, with_values, baseline=BASELINE_CONFIG)
    reproduced = headlines.compute_headlines(built, sorted(set(values["accel"])))
    published = headlines.compute_headlines(
        {
            m: reference.as_metric_table(reference.load_published(m))
            for m in reference.published_metrics()
        }
    )
    atomic_write_json(
        out_dir / "headlines.json",
        {
            "reproduced": reproduced.to_dict(),
            "published": {"source": reference.SEED_SOURCE, **published.to_dict()},
        },
    )
    atomic_write_text(
        out_dir / "headlines.html", standalone_page("Headlines", box_html + reproduced.to_html())
    )
    atomic_write_text(out_dir / "headlines.rst", failures.to_rst() + reproduced.to_rst())
    accels = sorted(set(values["accel"].dropna())) if not values.empty else []
    kernels = sorted(set(values["guest_kernel"].dropna())) if not values.empty else []
    comparisons = [
        compare.compare_with_published(
            built[m], reference.load_published(m), accels=accels, kernels=kernels
        )
        for m in reference.published_metrics()
        if m in built and built[m].baseline is not None
    ]
    atomic_write_text(
        out_dir / "compare-seed.txt",
        box_text
        + (
            "\n".join(compare.render_comparison_text(c) for c in comparisons)
            or "no table with an orig baseline to compare\n"
        ),
    )
    atomic_write_text(out_dir / "compare-seed.csv", compare.render_comparison_csv(comparisons))
    atomic_write_text(
        out_dir / "compare-seed.html",
        standalone_page(
            "Published vs reproduced",
            box_html
            + (
                "\n".join(compare.render_comparison_html(c) for c in comparisons)
                or "<p>No table with an orig baseline to compare.</p>"
            ),
        ),
    )


def kernel_ab_step(
    runs_csv: Path,
    out_dir: Path,
    base: str,
    others: Sequence[str],
    configs: Sequence[str],
    metrics: Sequence[str] = SEED_TABLE_METRICS,
) -> None:
    """A ``kernels:`` campaign's comparison: every other kernel against ``base``, per
    configuration and metric (:mod:`damon_eval.analysis.kernel_ab`), with a headline
    sentence each; ``kernels.{txt,csv,html,rst}`` in ``out_dir``."""
    from damon_eval.analysis import kernel_ab

    out_dir = Path(out_dir)
    runs = read_runs_csv(Path(runs_csv))
    values = ok_values(runs)
    present = [c for c in configs if c in set(values["config"])]
    chosen = [m for m in metrics if m in set(values["metric"])]
    texts, rows, sections, sentences = [], [], [], []
    for patched in others:
        kernels_here = set(values["kernel"])
        if base not in kernels_here or patched not in kernels_here or not present or not chosen:
            sentence = f"{patched} against {base}: no successful runs of both to compare."
            sentences.append(sentence)
            texts.append(sentence + "\n")
            sections.append(f"<p>{html.escape(sentence)}</p>")
            continue
        comparison = kernel_ab.compare_kernels(
            runs, base=base, patched=patched, configs=present, metrics=chosen
        )
        sentence = kernel_ab.headline(comparison)
        sentences.append(sentence)
        texts.append(kernel_ab.render_text(comparison))
        sections.append(f"<p><strong>{html.escape(sentence)}</strong></p>")
        for (config, metric), table in comparison.tables.items():
            sections.append(f"<h3>{html.escape(metric)}, configuration {html.escape(config)}</h3>")
            sections.append(table_render.render_html(table))
            sections.append(
                f'<pre class="seed-form">{html.escape(table_render.render_text(table))}</pre>'
            )
            for row in table_render.csv_rows(table):
                kernel = row.pop("config")  # the A/B table's columns are the kernels
                rows.append({"base": base, "patched": patched, "config": config,
                             "kernel": kernel, **row})  # fmt: skip
    atomic_write_text(out_dir / "kernels.txt", "\n".join(texts))
    atomic_write_text(out_dir / "kernels.rst", "".join(f"**{s}**\n\n" for s in sentences))
    import pandas as pd

    atomic_write_text(out_dir / "kernels.csv", pd.DataFrame(rows).to_csv(index=False))
    atomic_write_text(
        out_dir / "kernels.html", standalone_page("Kernel comparison", "\n".join(sections))
    )


def outcome_step(failures_json: Path, out_text: Path) -> None:
    """The pipeline's last step: fails (so Snakemake exits non-zero) when no run of the
    campaign succeeded, after every summary and report page was written."""
    from damon_eval.analysis.failures import FailureSummary

    data = json.loads(Path(failures_json).read_text())
    summary = FailureSummary(
        campaign=data["campaign"],
        nr_runs=data["nr_runs"],
        nr_ok=data["nr_ok"],
        by_kind=tuple(data["failed_by_kind"].items()),
        empty_cells=tuple((w, tuple(c)) for w, c in data["cells_without_ok_run"].items()),
    )
    try:
        check_some_run_succeeded(summary)
    except DamonEvalError as exc:
        print(f"damon-eval: error: {exc}", file=sys.stderr)
        raise
    if summary.any:
        print(f"damon-eval: warning: {summary.headline()}", file=sys.stderr)
    atomic_write_text(Path(out_text), summary.to_text())


def repeats_round_step(
    result_paths: Sequence[Path], rule: dict[str, Any], round_number: int, out_json: Path
) -> None:
    """One round of ``repeats: auto``: every cell's decision from the runs so far, and the
    runs of the next round (empty when every cell stopped).

    ``out_json`` is ``<results>/repeats/round-<n>.json``; the results sit below
    ``<results>/runs``.
    """
    results_dir = Path(out_json).parents[1]
    frame = runs_frame(load_result(Path(p), results_dir) for p in result_paths)
    auto = AutoRepeats(**rule)
    decisions = adaptive.decide(frame, auto)
    following = adaptive.next_round(decisions)
    atomic_write_json(
        Path(out_json),
        {
            "round": round_number,
            "rule": {
                "min_repeats": auto.min_repeats,
                "max_repeats": auto.max_repeats,
                "target_rel_half_width": auto.target_rel_half_width,
                "metric": auto.metric,
            },
            "decisions": [d.to_dict() for d in decisions],
            "next_runs": [RunKey(*run).relative_dir for run in following],
        },
    )
    log.info(
        "round %d: %d runs, %d of %d cells go on",
        round_number,
        len(result_paths),
        len(following),
        len(decisions),
    )


REPEATS_COLUMNS = (
    "suite",
    "workload",
    "config",
    "repeats_run",
    "repeats_done",
    "rel_half_width",
    "target_rel_half_width",
    "reason",
    "round",
)


def repeats_summary_step(round_json: Path, out_csv: Path, out_html: Path) -> None:
    """Why each cell of a ``repeats: auto`` campaign stopped: the last round's decisions."""
    import pandas as pd

    last = json.loads(Path(round_json).read_text())
    if last["next_runs"]:
        raise DamonEvalError(
            f"{round_json}: not the last round ({len(last['next_runs'])} runs follow)"
        )
    target = last["rule"]["target_rel_half_width"]
    frame = pd.DataFrame(
        [{**d, "target_rel_half_width": target, "round": last["round"]} for d in last["decisions"]],
        columns=[*REPEATS_COLUMNS, "stop"],
    ).loc[:, list(REPEATS_COLUMNS)]
    atomic_write_text(Path(out_csv), frame.to_csv(index=False))
    counts = frame["reason"].value_counts()
    rule = last["rule"]
    intro = (
        f"repeats: auto on {rule['metric']}: every cell got {rule['min_repeats']} to "
        f"{rule['max_repeats']} repeats, until its mean's 95% CI half-width was at most "
        f"{target:.1%} of the mean; {last['round']} round(s). "
        + ", ".join(f"{n} cell(s) {reason}" for reason, n in counts.items())
        + "."
    )
    shown = frame.assign(
        rel_half_width=frame["rel_half_width"].map(lambda v: "" if pd.isna(v) else f"{v:.2%}"),
        target_rel_half_width=f"{target:.2%}",
    )
    atomic_write_text(
        Path(out_html),
        standalone_page(
            "Repeats",
            f"<p>{html.escape(intro)}</p>" + shown.to_html(index=False, escape=True),
        ),
    )


def record_step(result_json: Path, out_dir: Path) -> None:
    """Heatmap, WSS distribution and WSS over time of one run's record, and
    the accuracy against ground truth when the workload wrote one."""
    from damon_eval.records import (
        accuracy,
        heatmap_grid,
        load_ground_truth,
        load_record,
        plot_heatmap,
        plot_wss,
        wss_distribution,
    )
    from damon_eval.workloads.truth import TRUTH_FILE_NAME

    result_json, out_dir = Path(result_json), Path(out_dir)
    result = json.loads(result_json.read_text())
    out_dir.mkdir(parents=True, exist_ok=True)
    record_info = result.get("record")
    if result["status"] != "ok":
        # A failed run has no record; its pages say so instead of failing the pipeline
        # before the summary (and its failure box) is written.
        failure = result.get("failure") or {}
        message = f"no record: the run failed ({failure.get('kind', '?')})"
        for name in ("heatmap", "wss_sz", "wss_time"):
            plots.plot_message(message, out_dir / name, formats=("png",))
        atomic_write_text(out_dir / "accuracy.csv", f"note\n{message}\n")
        atomic_write_json(
            out_dir / "record.json", {"run": result["run"], "record": None, "failure": failure}
        )
        return
    if not record_info:
        raise DamonEvalError(f"{result_json}: no record (status {result['status']})")
    record = load_record(result_json.parent / record_info["file"], allow_partial=True)
    # The hottest used range: a process's largest mapping is often idle (see docs/reports.md).
    plot_heatmap(heatmap_grid(record, draw_range="hottest"), out_dir / "heatmap.png")
    percentiles = list(range(0, 101, 1))
    plot_wss(wss_distribution(record, sortby="size"), percentiles, out_dir / "wss_sz.png")
    plot_wss(wss_distribution(record, sortby="time"), percentiles, out_dir / "wss_time.png")
    truth_path = result_json.parent / TRUTH_FILE_NAME
    summary: dict[str, Any] = {"run": result["run"], "record": record_info}
    if truth_path.is_file():
        frame = accuracy(record, load_ground_truth(truth_path))
        atomic_write_text(out_dir / "accuracy.csv", frame.to_csv(index=False))
        summary["accuracy"] = json.loads(frame.to_json(orient="records"))
    else:
        atomic_write_text(out_dir / "accuracy.csv", "note\nthe workload writes no ground truth\n")
    atomic_write_json(out_dir / "record.json", summary)


def provenance_step(campaign_json: Path, result_paths: Sequence[Path], out_html: Path) -> None:
    """One page: guest kernel and image, accelerator, configurations with raw
    scheme values, host, harness revision, and failed runs."""
    campaign = json.loads(Path(campaign_json).read_text())
    runs = [json.loads(Path(p).read_text()) for p in result_paths]
    guests: dict[str, dict] = {}
    hosts: dict[str, dict] = {}
    configurations: dict[str, dict] = {}
    revisions: set[str] = set()
    workloads: dict[str, dict] = {}
    failed = []
    for run in runs:
        prov = run["provenance"]
        guest = prov.get("guest", {})
        guests.setdefault(json.dumps(guest, sort_keys=True), guest)
        host = prov.get("host", {})
        host_key = {k: v for k, v in host.items() if k != "loadavg_1_5_15"}
        hosts.setdefault(json.dumps(host_key, sort_keys=True), host_key)
        configurations.setdefault(run["run"]["config"], prov.get("config", {}))
        workloads.setdefault(prov.get("workload", {}).get("id", "?"), prov.get("workload", {}))
        revisions.add(prov.get("harness_revision", "unknown"))
        if run["status"] != "ok":
            failed.append(run)
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR), autoescape=True, keep_trailing_newline=True
    )
    page = environment.get_template("provenance.html.j2").render(
        campaign=campaign,
        guests=list(guests.values()),
        hosts=list(hosts.values()),
        configurations=configurations,
        workloads=workloads,
        revisions=sorted(revisions),
        failed=failed,
        nr_runs=len(runs),
        metrics=METRICS,
        as_json=lambda obj: json.dumps(obj, indent=2, sort_keys=True),
    )
    atomic_write_text(Path(out_html), standalone_page("Provenance", page))


def run_logged(log_path: str | Path, step, *args: Any) -> None:
    """Run one step with its logging (and any error) going to the rule's log."""
    logging.basicConfig(
        filename=str(log_path),
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    try:
        step(*args)
    except Exception:
        log.exception("%s failed", step.__name__)
        raise
