"""``damon-eval analyze``: every table, statistic, headline, comparison and plot.

Output layout (all below ``out_dir``; same input -> byte-identical files)::

    tables/<metric>.txt          the seed's fixed-width form
    tables/<metric>.stats.txt    the same with significance markers and notes
    tables/<metric>.csv          values, overheads and statistics
    tables/<metric>.html         an HTML <section> (Jinja2)
    tables.html                  all table sections in one fragment
    analysis.css                 styles for the HTML pieces
    stats.csv                    every table's CSV rows in one file
    headlines.json|.rst|.html    sentences and numbers, reproduced and published
    compare-seed.txt|.csv|.html  published (eval-v18) vs reproduced
    plots/<metric>.png|.svg      overhead bars with 95 % CI
    analysis.json                manifest: inputs, run counts, files written
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from damon_eval.analysis import compare, headlines, plots, reference, table_render, tables
from damon_eval.analysis.choices import check_metric
from damon_eval.analysis.errors import RunTableError
from damon_eval.analysis.runtable import ok_values, read_runs_csv, runs_of_kernel, workload_ids
from damon_eval.analysis.templates import TEMPLATE_DIR
from damon_eval.atomic import atomic_write_text
from damon_eval.metrics import BASELINE_CONFIG, METRICS


@dataclass(frozen=True, slots=True)
class AnalysisResult:
    out_dir: Path
    metrics: tuple[str, ...]
    files: tuple[Path, ...]


def metrics_with_values(runs) -> list[str]:
    present = set(ok_values(runs)["metric"])
    return [m for m in METRICS if m in present]


def published_tables() -> dict[str, tables.MetricTable]:
    """The seed's tables with their printed values and percentages."""
    return {
        metric: reference.as_metric_table(reference.load_published(metric))
        for metric in reference.published_metrics()
    }


def analyze(
    runs_csv: Path,
    out_dir: Path,
    *,
    configs: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
    arithmetic: str = "exact",
    kernel: str | None = None,
    with_plots: bool = True,
) -> AnalysisResult:
    """With ``kernel``: of that kernel's runs of a ``kernels:`` campaign's run table."""
    runs_csv, out_dir = Path(runs_csv), Path(out_dir)
    runs = runs_of_kernel(read_runs_csv(runs_csv), kernel)
    available = metrics_with_values(runs)
    if metrics is None:
        metrics = available
    else:
        for metric in metrics:
            check_metric(metric)
        missing = [m for m in metrics if m not in available]
        if missing:
            raise RunTableError(
                f"{runs_csv}: no values for metric {missing[0]!r}; metrics with values: "
                f"{', '.join(available) or 'none'}"
            )
    if not metrics:
        raise RunTableError(f"{runs_csv}: no successful run, nothing to analyze")

    written: list[Path] = []

    def write(relative: str, text: str) -> None:
        path = out_dir / relative
        atomic_write_text(path, text)
        written.append(path)

    built = {
        m: tables.build_table(runs, m, configs, baseline=BASELINE_CONFIG, arithmetic=arithmetic)
        for m in metrics
    }
    for metric, table in built.items():
        write(f"tables/{metric}.txt", table_render.render_text(table))
        write(f"tables/{metric}.stats.txt", table_render.render_text(table, annotate=True))
        write(f"tables/{metric}.csv", table_render.render_csv(table))
        write(f"tables/{metric}.html", table_render.render_html(table))
    write("tables.html", "\n".join(table_render.render_html(t) for t in built.values()))
    write("analysis.css", (TEMPLATE_DIR / "analysis.css").read_text())
    write("stats.csv", table_render.render_csv(list(built.values())))

    ok = ok_values(runs)
    accels = sorted(set(ok["accel"])) if not ok.empty else []
    reproduced = headlines.compute_headlines(built, accels)
    published = headlines.compute_headlines(published_tables())
    write(
        "headlines.json",
        json.dumps(
            {
                "reproduced": reproduced.to_dict(),
                "published": {"source": reference.SEED_SOURCE, **published.to_dict()},
            },
            indent=2,
            sort_keys=True,
        )
        + "\n",
    )
    write("headlines.rst", reproduced.to_rst())
    write("headlines.html", reproduced.to_html())

    kernels = sorted(set(ok["guest_kernel"]))
    comparisons = [
        compare.compare_with_published(
            built[m], reference.load_published(m), accels=accels, kernels=kernels
        )
        for m in reference.published_metrics()
        if m in built and built[m].baseline is not None
    ]
    if comparisons:
        write(
            "compare-seed.txt",
            "\n".join(compare.render_comparison_text(c) for c in comparisons),
        )
        write("compare-seed.csv", compare.render_comparison_csv(comparisons))
        write(
            "compare-seed.html",
            "\n".join(compare.render_comparison_html(c) for c in comparisons),
        )

    if with_plots:
        for metric, table in built.items():
            written += plots.plot_table(table, out_dir / "plots" / metric)

    run_keys = runs.drop_duplicates(["suite", "workload", "config", "repeat"])
    manifest = {
        "runs_csv": runs_csv.name,
        "runs_csv_sha256": hashlib.sha256(runs_csv.read_bytes()).hexdigest(),
        "arithmetic": arithmetic,
        "metrics": list(metrics),
        "workloads": workload_ids(runs),
        "configs": list(tables.ordered_configs(runs["config"].unique())),
        "runs": {
            "total": len(run_keys),
            "ok": int((run_keys["status"] == "ok").sum()),
            "failed": int((run_keys["status"] != "ok").sum()),
        },
        "accels": accels,
        # columns the input lacked (a plain long table) and the defaults filled in
        "defaulted_columns": dict(runs.attrs.get("defaulted_columns") or {}),
        "guest_kernels": kernels,
        "files": sorted(p.relative_to(out_dir).as_posix() for p in written),
    }
    manifest_path = out_dir / "analysis.json"
    atomic_write_text(manifest_path, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    written.append(manifest_path)
    return AnalysisResult(out_dir, tuple(metrics), tuple(written))
