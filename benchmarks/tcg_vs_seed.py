"""What TCG keeps of the seed's claims: a finished campaign's totals against the seed's.

    python benchmarks/tcg_vs_seed.py results/default [--doc docs/tcg-vs-seed.md]

Reads the campaign's ``summary/tables/<metric>.csv`` (its ``total`` rows: the
sum over workloads, with the overhead's 95 % CI and Welch's test against
orig) and ``summary/runs.csv`` (accelerator, kernel, load), and the seed's
published totals (``damon_eval/data/reference``).  Per metric and
configuration it writes both overheads, whether the reproduced one is
significant, and whether the signs agree.  The workloads differ from the
seed's, so sizes are compared as orders of magnitude only; a sign that agrees
only where the reproduced overhead is significant counts as kept.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import os
from pathlib import Path

from damon_eval.analysis.reference import TOTAL, load_published
from damon_eval.atomic import atomic_write_text

METRICS = ("runtime", "memused.avg", "rss.avg")
CONFIGS = ("rec", "prec", "thp", "ethp", "prcl")
DOC = Path(__file__).resolve().parents[1] / "docs" / "tcg-vs-seed.md"


def _float(text: str) -> float | None:
    return float(text) if text not in ("", None) else None


def reproduced_totals(summary: Path, metric: str) -> dict[str, dict[str, str]]:
    path = summary / "tables" / f"{metric}.csv"
    with path.open() as handle:
        rows = [row for row in csv.DictReader(handle) if row["workload"] == TOTAL]
    return {row["config"]: row for row in rows}


def verdict(published: float | None, row: dict[str, str] | None) -> str:
    if published is None or row is None or _float(row["overhead_pct"]) is None:
        return "not measured"
    reproduced = _float(row["overhead_pct"])
    if row["significant"] != "True":
        return "not significant here"
    if abs(published) < 0.5:
        return "seed ~0; here " + ("up" if reproduced > 0 else "down")
    return "sign kept" if (published > 0) == (reproduced > 0) else "sign flipped"


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value:+.2f}"


def comparison_rows(summary: Path) -> list[dict[str, str]]:
    rows = []
    for metric in METRICS:
        published = load_published(metric)
        reproduced = reproduced_totals(summary, metric)
        for config in CONFIGS:
            seed = published.overhead(TOTAL, config)
            row = reproduced.get(config)
            ci = ""
            if row and row["overhead_ci95_low"]:
                low, high = _float(row["overhead_ci95_low"]), _float(row["overhead_ci95_high"])
                ci = f"{_pct(low)} … {_pct(high)}"
            rows.append(
                {
                    "metric": metric,
                    "config": config,
                    "seed": _pct(seed),
                    "here": _pct(_float(row["overhead_pct"])) if row else "",
                    "ci": ci,
                    "p": row["welch_p"][:6] if row and row["welch_p"] else "",
                    "verdict": verdict(seed, row),
                }
            )
    return rows


def campaign_facts(summary: Path) -> dict[str, str]:
    with (summary / "runs.csv").open() as handle:
        runs = list(csv.DictReader(handle))
    # runs.csv has one row per run and metric
    status = {
        (r["kernel"], r["suite"], r["workload"], r["config"], r["repeat"]): r["status"]
        for r in runs
    }
    ok = [key for key, value in status.items() if value == "ok"]
    return {
        "runs": f"{len(ok)} ok of {len(status)}",
        "accel": ", ".join(sorted({r["accel"] for r in runs if r.get("accel")})) or "?",
        "kernel": ", ".join(sorted({r["guest_kernel"] for r in runs if r.get("guest_kernel")}))
        or "?",
        "workloads": ", ".join(sorted({r["workload"] for r in runs})),
    }


def render(results: Path, rows: list[dict[str, str]], facts: dict[str, str], note: str = "") -> str:
    kept = [r for r in rows if r["verdict"] == "sign kept"]
    flipped = [r for r in rows if r["verdict"] == "sign flipped"]
    unclear = [r for r in rows if r["verdict"] == "not significant here"]
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# TCG against the seed: which claims keep their sign",
        "",
        f"Measured {when} by `benchmarks/tcg_vs_seed.py {results}`: campaign totals "
        f"(sum over {facts['workloads']}) against the seed's totals (eval-v18: 25 "
        f"PARSEC3/SPLASH-2X workloads, KVM, Linux v5.7 + DAMON v16).  "
        f"Runs: {facts['runs']}, accelerator "
        f"{facts['accel']}, guest kernel {facts['kernel']}, host load average "
        f"{os.getloadavg()[0]:.1f} at writing." + (f"  {note}" if note else ""),
        "",
        "The workloads are not the seed's, so sizes compare as orders of magnitude only; "
        "the sign of a significant overhead is what carries over.  Overheads are percent "
        "against orig, the 95 % CI is the delta method's over repeats (docs/statistics.md), "
        "`p` is Welch's test against orig.",
        "",
        "| metric | config | seed (%) | here (%) | 95 % CI | p | verdict |",
        "|---|---|---:|---:|---|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['metric']} | {r['config']} | {r['seed']} | {r['here']} | {r['ci']} | "
            f"{r['p']} | {r['verdict']} |"
        )
    lines += [
        "",
        "## What this says",
        "",
        f"- Sign kept ({len(kept)}): "
        + (", ".join(f"{r['metric']} {r['config']}" for r in kept) or "none")
        + ".",
        f"- Sign flipped ({len(flipped)}): "
        + (", ".join(f"{r['metric']} {r['config']}" for r in flipped) or "none")
        + ".",
        f"- Not significant here ({len(unclear)}): "
        + (", ".join(f"{r['metric']} {r['config']}" for r in unclear) or "none")
        + ".",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="a finished campaign's results directory")
    parser.add_argument("--doc", type=Path, default=DOC)
    parser.add_argument("--note", default="", help="conditions of the run, added as written")
    args = parser.parse_args()
    summary = args.results / "summary"
    text = render(args.results, comparison_rows(summary), campaign_facts(summary), args.note)
    atomic_write_text(args.doc, text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
