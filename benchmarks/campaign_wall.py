#!/usr/bin/env python3
"""Wall time of a whole campaign: image, runs, analysis and report, as a user runs it.

    .venv/bin/python benchmarks/campaign_wall.py [--campaign configs/default.yaml]
        [--fresh-cache] [--cores 2] [--write-docs]

Runs the pipeline in three Snakemake invocations so that each phase has its own
time: the guest image (with ``--fresh-cache`` it is built from scratch in an
empty cache, with the agent, workloads and saved state that the first run then
prepares), every run of the campaign, then the tables, plots and the HTML
report.  Results go to a temporary ``results_dir``; the repository's results
are not touched.  The target for ``configs/default.yaml`` is 30 minutes under
TCG on a 2-core machine, image build included; ``--write-docs`` records the
numbers in docs/benchmarks.md.  Exit status 1 when the target is missed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from docs_section import write_section  # noqa: E402

from damon_eval.config.campaign import campaign_from_dict, load_campaign_mapping  # noqa: E402

START = "<!-- campaign-wall:start -->"
END = "<!-- campaign-wall:end -->"
TARGET_S = {"default": 30 * 60}


def snakemake(args: list[str], env: dict[str, str], log: Path) -> float:
    """Run Snakemake in the repository; returns its wall time; raises on failure."""
    command = [sys.executable, "-m", "snakemake", *args]
    started = time.monotonic()
    with log.open("a") as out:
        out.write(f"$ {' '.join(command)}\n")
        out.flush()
        done = subprocess.run(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"snakemake {' '.join(args)} failed (exit {done.returncode}); see {log}")
    return elapsed


def run_facts(results: Path) -> dict[str, object]:
    """What the runs themselves say: their status, accelerator and phase timings."""
    statuses: dict[str, int] = {}
    accels: set[str] = set()
    per_run: list[float] = []
    runtimes: list[float] = []
    for path in sorted(results.glob("runs/*/*/*/*/result.json")):
        result = json.loads(path.read_text())
        statuses[result["status"]] = statuses.get(result["status"], 0) + 1
        provenance = result.get("provenance") or {}
        accels.add(str((provenance.get("guest") or {}).get("accel", "?")))
        timings = provenance.get("timings_s") or {}
        if timings:
            per_run.append(sum(timings.values()))
        runtime = (result.get("metrics") or {}).get("runtime")
        if runtime is not None:
            runtimes.append(float(runtime))
    return {
        "statuses": statuses,
        "accels": sorted(accels),
        "per_run_s": per_run,
        "runtime_s": runtimes,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--campaign", default="configs/default.yaml")
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--fresh-cache",
        action="store_true",
        help="build the image, agent, workloads and saved state from scratch in an empty cache",
    )
    parser.add_argument("--keep", action="store_true", help="keep the results directory")
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()

    campaign = campaign_from_dict(load_campaign_mapping(args.campaign), args.campaign)
    work = Path(tempfile.mkdtemp(prefix="damon-eval-campaign-wall."))
    results = work / "results"
    log = work / "snakemake.log"
    env = dict(os.environ)
    if args.fresh_cache:
        env["DAMON_EVAL_CACHE"] = str(work / "cache")
    # targets go first: --config takes every word after it
    common = [
        "--cores",
        str(args.cores),
        "--configfile",
        args.campaign,
        "--config",
        f"results_dir={results}",
    ]
    load_before = os.getloadavg()
    started_at = dt.datetime.now(dt.UTC)
    phases = {
        "guest image": snakemake([f"{results}/guest/image.json", *common], env, log),
        "runs": snakemake([*(f"runs_{name}" for name in campaign.configs), *common], env, log),
        "analysis": snakemake(common, env, log),
        "HTML report": snakemake([*common, "--report", str(results / "report.html")], env, log),
    }
    load_after = os.getloadavg()
    total = sum(phases.values())
    facts = run_facts(results)
    per_run = sorted(facts["per_run_s"])  # type: ignore[arg-type]
    nr_runs = len(campaign.runs())
    target = TARGET_S.get(campaign.name)

    lines = [
        START,
        f"## Campaign wall time: `{args.campaign}` (`benchmarks/campaign_wall.py`)",
        "",
        f"Measured {started_at:%Y-%m-%d %H:%M} UTC by `benchmarks/campaign_wall.py --campaign "
        f"{args.campaign}{' --fresh-cache' if args.fresh_cache else ''} --cores {args.cores}`: "
        f"{nr_runs} runs ({len(campaign.workloads)} workloads x {len(campaign.configs)} "
        f"configurations x {campaign.settings['repeats']} repeats), accelerator "
        f"**{', '.join(facts['accels'])}** (QEMU), {os.cpu_count()} host CPUs, host load average "  # type: ignore[arg-type]
        f"(1 min) {load_before[0]:.1f} before, {load_after[0]:.1f} after.  "
        + (
            "The cache was empty: the image, the agent and workload builds and the saved "
            "guest state were all made during the campaign."
            if args.fresh_cache
            else "The image and preparations came from the cache where present."
        ),
        "",
        "| phase | wall time |",
        "|---|---|",
    ]
    for name, seconds in phases.items():
        lines.append(f"| {name} | {seconds / 60:.1f} min ({seconds:.0f} s) |")
    verdict = ""
    if target is not None:
        verdict = f" (target {target / 60:.0f} min: {'met' if total <= target else 'MISSED'})"
    lines.append(f"| **total** | **{total / 60:.1f} min**{verdict} |")
    lines.append("")
    statuses = ", ".join(f"{n} {s}" for s, n in sorted(facts["statuses"].items()))  # type: ignore[union-attr]
    if per_run:
        median = per_run[len(per_run) // 2]
        runtimes = sorted(facts["runtime_s"])  # type: ignore[arg-type]
        lines.append(
            f"Runs: {statuses}.  One run, restore to shutdown (the phases of "
            f"`provenance.timings_s`): median {median:.1f} s, range {per_run[0]:.1f}-"
            f"{per_run[-1]:.1f} s; of that, the workload's own runtime: median "
            f"{runtimes[len(runtimes) // 2]:.1f} s.  The longest run is the first: it builds the "
            "agent and workloads and saves the guest state that later runs restore.  The rest "
            "of the runs phase is Snakemake starting one `damon-eval run` job per run."
        )
    lines.append(END)
    section = "\n".join(lines) + "\n"
    print(section)
    if args.write_docs:
        print(f"wrote {write_section(section, START, END)}")
    if not args.keep:
        subprocess.run(["rm", "-rf", str(work)], check=False)
    else:
        print(f"results kept in {results}")
    return 1 if target is not None and total > target else 0


if __name__ == "__main__":
    sys.exit(main())
