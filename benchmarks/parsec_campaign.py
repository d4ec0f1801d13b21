"""PARSEC 3.0 in the guest: a finished PARSEC campaign's build and runs, per package.

    python benchmarks/parsec_campaign.py results/parsec-quick [--wall-s 3097] [--doc PATH]

Reads the campaign's ``guest/parsec-build.json`` (the build: per package ok and
seconds, ``parsec.build_only`` packages included), ``campaign.json`` (the input
each workload ran at) and every run's ``result.json`` (status, runtime, rss.avg,
number of samples), and writes one
table into docs/benchmarks.md between its markers.  Runs shorter than the
sample interval have only the memory samples at the benchmark's start and end, so
their rss.avg says little about the benchmark: the table counts samples and names them.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from docs_section import DOC, write_section

from damon_eval.measure.plan import parsec_input_size
from damon_eval.workloads import get_workload

START = "<!-- parsec-campaign:start -->"
END = "<!-- parsec-campaign:end -->"


def load_runs(results: Path) -> dict[str, dict[str, dict]]:
    """workload id -> configuration -> the first repeat's facts."""
    runs: dict[str, dict[str, dict]] = defaultdict(dict)
    for path in sorted(results.glob("runs/*/*/*/*/result.json")):
        result = json.loads(path.read_text())
        run = result["run"]
        workload = f"{run['suite']}/{run['workload']}"
        if run["config"] in runs[workload]:
            continue
        rows = (result.get("samples") or {}).get("rows") or []
        runs[workload][run["config"]] = {
            "status": result["status"],
            "runtime": result.get("metrics", {}).get("runtime"),
            "rss": result.get("metrics", {}).get("rss.avg"),
            "samples": len(rows),
            "accel": (result.get("provenance") or {}).get("guest", {}).get("accel"),
            "kernel": (result.get("provenance") or {}).get("guest", {}).get("kernel_release"),
            "cpu": (result.get("provenance") or {}).get("guest", {}).get("qemu_cpu"),
        }
    return runs


def _seconds(value) -> str:
    return "" if value is None else f"{value:.2f}"


def section(results: Path, wall_s: float | None) -> str:
    build = json.loads((results / "guest" / "parsec-build.json").read_text())
    settings = json.loads((results / "campaign.json").read_text())["settings"]
    parsec = settings["parsec"]
    runs = load_runs(results)
    configs = list(settings["configs"])
    every_run = [run for by_config in runs.values() for run in by_config.values()]

    def seen(fact: str) -> str:
        values = sorted({str(run[fact]) for run in every_run if run[fact] is not None})
        return ", ".join(values) or "not recorded"

    lines = [
        START,
        f"## PARSEC 3.0 in the guest: `{settings['campaign']}`",
        "",
        f"Written by `benchmarks/parsec_campaign.py {results}`. PARSEC: `{parsec['path']}` "
        f"(source digest `{build['source_digest']}`), built with its own `parsecmgmt -a build` "
        f"and `gcc-damon-eval` in the image's userland (`parsec.build: {build['mode']}`): "
        f"**{sum(p['ok'] for p in build['packages'].values())} of {len(build['packages'])} "
        f"packages built in {build['build_seconds']:.0f} s** (key `{build['key']}`). "
        f"Runs: accelerator {seen('accel')}, QEMU CPU `{seen('cpu')}`"
        + (" (some runs predate the record)" if any(r["cpu"] is None for r in every_run) else "")
        + ", kernel "
        f"{seen('kernel')}, {parsec.get('threads', 1)} thread(s), one repeat, "
        f"sample interval {settings['sample_interval_ms']} ms"
        + (f"; the whole campaign (build included) took {wall_s / 60:.0f} min." if wall_s else "."),
        "",
        "| package | build ok | build s | input | "
        + " | ".join(f"{c} runtime s" for c in configs)
        + " | orig rss.avg KiB | orig samples |",
        "|---|---|---:|---|" + "---:|" * len(configs) + "---:|---:|",
    ]
    ok_runs = total_runs = 0
    for workload in settings["workloads"]:
        package = build["packages"].get(get_workload(workload).package, {})
        by_config = runs.get(workload, {})
        cells = []
        for config in configs:
            run = by_config.get(config)
            total_runs += 1
            if run and run["status"] == "ok":
                ok_runs += 1
                cells.append(_seconds(run["runtime"]))
            else:
                cells.append("failed" if run else "missing")
        orig = by_config.get("orig") or {}
        input_size = parsec_input_size(parsec, workload)
        lines.append(
            f"| {workload} | {'yes' if package.get('ok') else 'no'} | "
            f"{_seconds(package.get('seconds'))} | {input_size} | "
            + " | ".join(cells)
            + f" | {orig.get('rss', '')} | {orig.get('samples', '')} |"
        )
    for workload in parsec.get("build_only") or ():
        package = build["packages"].get(get_workload(workload).package, {})
        lines.append(
            f"| {workload} | {'yes' if package.get('ok') else 'no'} | "
            f"{_seconds(package.get('seconds'))} | built only | "
            + " | ".join("not run" for _ in configs)
            + " | | |"
        )
    interval_s = settings["sample_interval_ms"] / 1000
    short = [
        w
        for w in settings["workloads"]
        if ((runs.get(w, {}).get("orig") or {}).get("runtime") or interval_s) < interval_s
    ]
    lines += [
        "",
        f"{ok_runs} of {total_runs} runs succeeded. "
        + (
            f"{len(short)} packages ran shorter than one sample interval at these inputs "
            f"({', '.join(short)}): their rss.avg comes from the samples at the benchmark's "
            "start and end, not from its work. "
            "Use larger inputs (`parsec.inputs`) or a shorter `sample_interval_ms` for memory "
            "numbers from them."
            if short
            else ""
        ),
        END,
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="a finished PARSEC campaign's results directory")
    parser.add_argument("--wall-s", type=float, help="the campaign's wall time, if measured")
    parser.add_argument("--doc", type=Path, default=DOC)
    args = parser.parse_args(argv)
    path = write_section(section(args.results, args.wall_s), START, END, args.doc)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
