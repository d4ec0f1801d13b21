#!/usr/bin/env python3
"""What each noise step buys: runtime and RSS spread of one short orig workload.

    .venv/bin/python benchmarks/noise_steps.py [--workload debian/sqlite3] [--scale 0.04]
        [--repeats 8] [--variants baseline,drop,compact,pin,icount]
        [--icount shift=0,sleep=off] [--vcpus 2] [--section steps] [--write-doc]

One small campaign per variant (``noise:`` and ``guest.fast_start`` set as below, the
same workload at the same scale, ``configs: [orig]``), each run through the CLI as
the pipeline does (``damon-eval run --campaign ... --run ...``), so the measured
code is the real one.  Runs are interleaved: repeat 1 of every variant, then
repeat 2, ..., so a drift of the shared host's load spreads over all variants.

==========  ==========================================================
baseline    no drop of caches, no compaction, no pinning
drop        + the agent drops caches right before the workload
compact     + caches dropped and memory compacted before the agent starts
pin         + vCPU threads and the harness pinned (only with >= vcpus+1 CPUs)
icount      + QEMU ``-icount`` (single-threaded TCG), the value of ``--icount``
icount-bare baseline + ``-icount`` only (not in the default set)
pin-only    baseline + pinning only (not in the default set)
cold-off    baseline, but every run boots cold (not in the default set)
cold-on     cold boots, caches dropped and memory compacted (not in the default set)
==========  ==========================================================

``-icount`` is not a campaign option (these measurements found it not useful); the
runs get it through the benchmark hook ``$DAMON_EVAL_BENCH_ICOUNT``.
``--vcpus 1`` makes pinning possible on a 2-CPU host (it needs vcpus+1 CPUs).
``--section`` names the doc section: ``steps`` (default), ``overhead`` (default with
``--overhead``), ``cold`` or ``pin``, each between its own markers.

A warm-up run per saved state (one without, one with ``-icount``) comes first and
is not counted: it makes the state (cold variants need none).  Reports per variant:
runs ok, mean runtime, CoV of runtime and of ``rss.avg``, whether the runtime spread
differs from the first variant's (``scipy.stats.levene``, median-centred, and
``bartlett``), the runs' host load average, what provenance.noise says was applied.
``--write-doc`` puts the table into docs/benchmarks.md (between its markers).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from scipy import stats

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from docs_section import write_section  # noqa: E402

from damon_eval.measure.noise import BENCH_ICOUNT_ENV, pin_plan  # noqa: E402

SECTIONS = {
    "steps": "## Noise at its source: what each step buys (`benchmarks/noise_steps.py`)",
    "overhead": "## Runtime overheads with and without `-icount` "
    "(`benchmarks/noise_steps.py --overhead {overhead}`)",
    "cold": "## Dropping caches and compacting on cold boots (`benchmarks/noise_steps.py`)",
    "pin": "## Pinning, with {vcpus} vCPU(s) on {cpus} host CPUs (`benchmarks/noise_steps.py`)",
}

OFF = {"drop_caches": False, "compact_memory": False, "pin_cpus": "off"}
# variant: (noise section, -icount, fast start)
VARIANTS = {
    "baseline": (OFF, False, True),
    "drop": ({**OFF, "drop_caches": True}, False, True),
    "compact": ({**OFF, "drop_caches": True, "compact_memory": True}, False, True),
    "pin": ({"drop_caches": True, "compact_memory": True, "pin_cpus": "auto"}, False, True),
    "icount": ({"drop_caches": True, "compact_memory": True, "pin_cpus": "auto"}, True, True),
    "icount-bare": (OFF, True, True),
    "pin-only": ({**OFF, "pin_cpus": "auto"}, False, True),
    "cold-off": (OFF, False, False),
    "cold-on": ({**OFF, "drop_caches": True, "compact_memory": True}, False, False),
}


def campaign_file(directory: Path, variant: str, args: argparse.Namespace) -> Path:
    noise, _, fast_start = VARIANTS[variant]
    guest = {
        "spec": "guest/default.yaml",
        "vcpus": args.vcpus,
        "memory_mib": 2048,
        "accel": "tcg",
        "fast_start": fast_start,
    }
    data = {
        "campaign": f"noise-{variant}",
        "description": f"benchmarks/noise_steps.py, variant {variant}",
        "guest": guest,
        "noise": noise,
        "workloads": [args.workload],
        "workload_scale": args.scale,
        "configs": ["orig", *args.overhead],
        "repeats": args.repeats,
        "max_attempts": 1,
        "run_timeout_s": 600,
        "results_dir": str(directory / variant / "results"),
    }
    path = directory / f"{variant}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def one_run(
    campaign: Path,
    workload: str,
    repeat: int,
    out: Path,
    log: Path,
    config: str = "orig",
    icount: str | None = None,
) -> dict:
    run_id = f"{workload}/{config}/{repeat:02d}"
    command = [sys.executable, "-m", "damon_eval.cli", "run", "--campaign", str(campaign),
               "--run", run_id, "--out", str(out), "--failed-ok"]  # fmt: skip
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    with log.open("a") as sink:
        sink.write(f"$ {' '.join(command)}\n")
        sink.flush()
        env = {key: value for key, value in os.environ.items() if key != BENCH_ICOUNT_ENV}
        if icount:
            env[BENCH_ICOUNT_ENV] = icount
        subprocess.run(
            command, cwd=REPO, env=env, stdout=sink, stderr=subprocess.STDOUT, check=False
        )
    wall = time.monotonic() - started
    result_path = out / "result.json"
    if not result_path.is_file():
        return {"status": "missing", "wall_s": wall, "load_before": load_before}
    result = json.loads(result_path.read_text())
    provenance = result.get("provenance") or {}
    metrics = result.get("metrics") or {}
    return {
        "status": result["status"],
        "reason": (result.get("failure") or {}).get("reason"),
        "runtime": metrics.get("runtime"),
        "rss_avg": metrics.get("rss.avg"),
        "wall_s": round(wall, 2),
        "load_before": load_before,
        "load_after": (provenance.get("host") or {}).get("loadavg_1_5_15", [None])[0],
        "accel": (provenance.get("guest") or {}).get("accel"),
        "icount": (provenance.get("guest") or {}).get("icount"),
        "boot_kind": (provenance.get("guest") or {}).get("boot_kind"),
        "noise": provenance.get("noise"),
    }


def cov(values: list[float]) -> float | None:
    if len(values) < 2 or statistics.fmean(values) == 0:
        return None
    return statistics.stdev(values) / statistics.fmean(values) * 100


def applied(runs: list[dict]) -> str:
    """What the runs' provenance.noise says was done (the first ok run's)."""
    for run in runs:
        steps = run.get("noise")
        if run["status"] != "ok" or not steps:
            continue
        said = [f"{run.get('boot_kind') or '?'} boot"]
        said.append("drop" if steps["drop_caches"]["applied"] else "no drop")
        compact = steps["compact_memory"]
        if compact["applied"]:
            said.append(
                f"compact ({compact['free_huge_mib_before']} -> "
                f"{compact['free_huge_mib_after']} MiB free in 2 MiB blocks)"
            )
        else:
            said.append("no compact")
        pin = steps["pinning"]
        said.append(f"pinned vCPUs to {pin['vcpu_cpus']}" if pin["applied"] else "not pinned")
        if run.get("icount"):
            said.append(f"-icount {run['icount']}")
        said.append(f"clocksource {steps['clock']['clocksource']}")
        return ", ".join(said)
    return "-"


def ok_runtimes(runs: list[dict], config: str = "orig") -> list[float]:
    return [
        r["runtime"]
        for r in runs
        if r["config"] == config and r["status"] == "ok" and r["runtime"] is not None
    ]


def overhead_table(results: dict[str, list[dict]], configs: list[str]) -> list[str]:
    """Runtime overhead of each configuration over orig, per variant."""
    lines = [
        "| variant | config | runs ok | mean runtime s | CoV runtime % | overhead vs orig % |",
        "|---|---|---|---|---|---|",
    ]
    for variant, runs in results.items():
        means = {}
        for config in ["orig", *configs]:
            values = ok_runtimes(runs, config)
            total = sum(1 for r in runs if r["config"] == config)
            mean = statistics.fmean(values) if values else None
            means[config] = mean
            spread = cov(values)
            over = "" if config == "orig" or not mean or not means["orig"] else (
                f"{(mean / means['orig'] - 1) * 100:+.1f}"
            )  # fmt: skip
            lines.append(
                f"| {variant} | {config} | {len(values)}/{total} | "
                f"{'-' if mean is None else f'{mean:.2f}'} | "
                f"{'-' if spread is None else f'{spread:.2f}'} | {over or '-'} |"
            )
    return lines


def spread_test(runtimes: list[float], reference: list[float]) -> str:
    """Levene (median-centred) and Bartlett p of equal runtime variance, as text."""
    if len(runtimes) < 3 or len(reference) < 3:
        return "too few runs"
    levene = stats.levene(runtimes, reference, center="median").pvalue
    bartlett = stats.bartlett(runtimes, reference).pvalue
    return f"{levene:.2f} / {bartlett:.2f}"


def table(results: dict[str, list[dict]]) -> list[str]:
    reference_name = next(iter(results), "")
    reference = ok_runtimes(results.get(reference_name, []))
    lines = [
        "| variant | runs ok | mean runtime s | CoV runtime % | CoV rss.avg % | "
        f"runtime spread vs {reference_name}: Levene p / Bartlett p | "
        "load avg (1 min) | applied (provenance.noise) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for variant, runs in results.items():
        runs = [r for r in runs if r["config"] == "orig"]
        ok = [r for r in runs if r["status"] == "ok"]
        runtimes = ok_runtimes(runs)
        versus = "reference" if variant == reference_name else spread_test(runtimes, reference)
        rss = [r["rss_avg"] for r in ok if r["rss_avg"] is not None]
        loads = [r["load_before"] for r in runs]
        mean = f"{statistics.fmean(runtimes):.2f}" if runtimes else "-"
        cov_rt, cov_rss = cov(runtimes), cov(rss)
        lines.append(
            f"| {variant} | {len(ok)}/{len(runs)} | {mean} | "
            f"{'-' if cov_rt is None else f'{cov_rt:.2f}'} | "
            f"{'-' if cov_rss is None else f'{cov_rss:.2f}'} | {versus} | "
            f"{min(loads):.1f}-{max(loads):.1f} | {applied(runs)} |"
        )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="debian/sqlite3")
    parser.add_argument("--scale", type=float, default=0.04)
    parser.add_argument("--repeats", type=int, default=8)
    parser.add_argument("--variants", default="baseline,drop,compact,pin,icount")
    parser.add_argument("--icount", default="shift=0,sleep=off")
    parser.add_argument("--vcpus", type=int, default=2)
    parser.add_argument("--section", choices=sorted(SECTIONS), help="doc section to write")
    parser.add_argument("--keep", type=Path, help="keep the runs in this directory")
    parser.add_argument("--json", type=Path, help="write every run's numbers here")
    parser.add_argument(
        "--overhead",
        type=lambda text: [c for c in text.split(",") if c],
        default=[],
        metavar="CONFIGS",
        help="also run these configurations and report their runtime overhead over orig "
        "(own doc section)",
    )
    parser.add_argument("--write-doc", action="store_true")
    args = parser.parse_args()

    variants = [v for v in args.variants.split(",") if v]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}")
    skipped: dict[str, str] = {}
    plan = pin_plan("auto", args.vcpus, os.sched_getaffinity(0))
    for pinned in ("pin", "pin-only"):
        if pinned in variants and not plan.pins:
            variants.remove(pinned)
            skipped[pinned] = plan.reason

    work = args.keep or Path(tempfile.mkdtemp(prefix="damon-eval-noise."))
    work.mkdir(parents=True, exist_ok=True)
    log = work / "runs.log"
    campaigns = {v: campaign_file(work, v, args) for v in variants}
    results: dict[str, list[dict]] = {v: [] for v in variants}

    def icount_of(variant: str) -> str | None:
        return args.icount if VARIANTS[variant][1] else None

    # Not counted: the first run of a saved state builds it (and the image if missing).
    # Cold variants boot afresh every run: they have no state to make.
    first_per_state = {VARIANTS[v][1:]: v for v in reversed(variants) if VARIANTS[v][2]}
    for variant in first_per_state.values():
        warm = one_run(campaigns[variant], args.workload, 1, work / variant / "warmup", log,
                       icount=icount_of(variant))  # fmt: skip
        print(f"warm-up {variant}: {warm['status']} runtime={warm.get('runtime')} "
              f"wall={warm['wall_s']:.1f}s {warm.get('reason') or ''}", flush=True)  # fmt: skip
    load_start = os.getloadavg()
    started = time.monotonic()
    for repeat in range(1, args.repeats + 1):
        for variant in variants:
            for config in ["orig", *args.overhead]:
                out = work / variant / "runs" / config / f"{repeat:02d}"
                run = one_run(campaigns[variant], args.workload, repeat, out, log, config,
                              icount_of(variant))  # fmt: skip
                run["config"] = config
                results[variant].append(run)
                print(f"{variant} {config} {repeat}: {run['status']} runtime={run.get('runtime')} "
                  f"rss.avg={run.get('rss_avg')} wall={run['wall_s']:.1f}s "
                  f"load={run['load_before']:.2f}", flush=True)  # fmt: skip
    elapsed = time.monotonic() - started
    load_end = os.getloadavg()
    if args.json:
        args.json.write_text(json.dumps({"args": vars(args) | {"keep": str(args.keep),
                                         "json": str(args.json)}, "results": results},
                                        indent=1, default=str))  # fmt: skip

    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    accels = sorted({str(r.get("accel")) for runs in results.values() for r in runs})
    section_name = args.section or ("overhead" if args.overhead else "steps")
    start, end = f"<!-- noise-{section_name}:start -->", f"<!-- noise-{section_name}:end -->"
    title = SECTIONS[section_name].format(
        overhead=",".join(args.overhead), vcpus=args.vcpus, cpus=os.cpu_count()
    )
    lines = [
        start,
        title,
        "",
        f"Measured {stamp} by `benchmarks/noise_steps.py --workload {args.workload} "
        f"--scale {args.scale} --repeats {args.repeats} --icount {args.icount} "
        f"--variants {','.join(variants)} --vcpus {args.vcpus}"
        f"{' --overhead ' + ','.join(args.overhead) if args.overhead else ''}`: "
        f"{' and '.join(f'`{c}`' for c in ['orig', *args.overhead])}, "
        f"{args.vcpus} vCPUs / 2048 MiB, accelerator **{', '.join(accels)}**, "
        f"{os.cpu_count()} host CPUs, runs interleaved across variants; "
        f"{elapsed / 60:.1f} min in all.  Host load average (1/5/15 min) "
        f"{load_start[0]:.1f} / {load_start[1]:.1f} / {load_start[2]:.1f} before, "
        f"{load_end[0]:.1f} / {load_end[1]:.1f} / {load_end[2]:.1f} after; the column "
        "gives the 1-minute range before each run (other sessions share the host).",
        "",
        *(overhead_table(results, args.overhead) if args.overhead else table(results)),
        "",
    ]
    for variant, reason in skipped.items():
        lines.append(f"Variant `{variant}` not run: {reason}.")
    lines.append(end)
    section = "\n".join(lines)
    print(section)
    if args.write_doc:
        write_section(section, start, end)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
