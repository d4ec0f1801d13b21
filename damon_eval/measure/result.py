"""A run's ``result.json``: metrics from the agent's files, the record converted, the
provenance; and the same skeleton for a failed attempt.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from damon_eval import provenance
from damon_eval.damon.tracing import convert_trace_lines
from damon_eval.measure.plan import Failure, RunPlan
from damon_eval.measure.samples import compute_metrics, load_agent_output

RESULT_SCHEMA_VERSION = 1
RECORD_FILE = "record.perf_script"
LOG_TAIL_LINES = 30


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def diagnostics(work_dir: Path) -> str:
    """The tails of the agent's logs, for a failure report."""
    parts = []
    for name in ("agent.log", "events.log", "workload.log", "console.log"):
        tail = _tail(work_dir / name, 10)
        if tail:
            parts.append(f"--- {name}\n{tail}")
    return "\n".join(parts)


def result_skeleton(plan: RunPlan) -> dict[str, Any]:
    key, request = plan.request.key, plan.request
    return {
        "schema_version": RESULT_SCHEMA_VERSION,
        "run": {
            "suite": key.suite,
            "workload": key.workload,
            "config": key.config,
            "repeat": key.repeat,
            "attempt": request.attempt,
            **({"kernel": key.kernel} if key.kernel else {}),
        },
    }


def run_provenance(plan: RunPlan, parts: dict[str, Any] | None) -> dict[str, Any]:
    campaign = plan.request.campaign
    run_plan = plan.workload.run_plan(plan.context, plan.params)
    parts = parts or {}
    return {
        "harness_revision": provenance.git_revision(),
        "host": provenance.host_facts(),
        "guest": parts.get("facts", {}),
        "config": plan.configuration.describe(),
        "system": parts.get("system"),
        "damon": parts.get("damon"),
        "workload": {
            "id": plan.workload.id,
            "version": plan.workload.version(plan.context),
            "guest_versions": parts.get("workload_versions"),
            "build": plan.workload.build_provenance(plan.context),
            "command": shlex.join(run_plan.command),
            "hold": run_plan.hold,
            "scale": plan.params.scale,
            "input": plan.params.input_size,
            "threads": plan.params.nr_threads,
            "target": parts.get("target"),
        },
        "campaign": {"name": campaign.name, "source": str(campaign.source)},
        "timings_s": parts.get("timings_s", {}),
        "recording": parts.get("recording"),
        "noise": parts.get("noise"),
    }


def finish_result(plan: RunPlan, parts: dict[str, Any], work_dir: Path) -> dict[str, Any]:
    """Metrics from the agent's files, the record converted; raises Failure."""
    output = load_agent_output(work_dir)
    status = output.status
    if status.status != "ok":
        kind = "timeout" if status.status == "timeout" else "exit"
        detail = status.error or f"exit code {status.exit_code}, signal {status.signal}"
        raise Failure(kind, f"workload {status.status}: {detail}", _tail(work_dir / "workload.log"))
    metrics = compute_metrics(output.samples.samples, output.runtime_s)
    record_info = None
    if plan.configuration.records:
        trace = work_dir / "trace.txt"
        if not trace.is_file():
            raise Failure("harness", "the recording configuration produced no trace")
        with trace.open() as lines, (work_dir / RECORD_FILE).open("w") as out:
            conversion = convert_trace_lines(lines, out)
        from damon_eval.records import load_record

        record = load_record(work_dir / RECORD_FILE, allow_partial=True)
        if record.n_snapshots == 0:
            raise Failure("harness", "the DAMON record holds no snapshot")
        record_info = {
            "file": RECORD_FILE,
            "format": "perf_script",
            "nr_snapshots": record.n_snapshots,
            # events the kernel dropped because the reader fell behind (0 expected)
            "nr_lost_events": conversion.nr_lost_events,
        }
        trace.unlink()
    interval_s = plan.request.campaign.settings["sample_interval_ms"] / 1000
    return {
        **result_skeleton(plan),
        "status": "ok",
        "failure": None,
        "metrics": metrics,
        "samples": output.samples.to_json(interval_s),
        "record": record_info,
        "provenance": run_provenance(plan, parts),
    }
