"""One measured run: boot, configure, execute the workload, sample, write ``result.json``.

The sequence follows the DAMON evaluation document and damon-tests, minus
their leaks into the numbers:

1. Everything is validated on the host before a guest boots (campaign,
   configuration and its schemes, workload availability, image spec).
2. The guest starts from a saved booted state (or cold) on a fresh overlay;
   the campaign's workloads and the agent were prepared in that state.
3. THP, swap and DAMON modules are set; the agent starts *detached* and drops
   caches; it launches the workload held at exec and reports its pid.
4. DAMON is configured on that pid (vaddr) or on System RAM (paddr), the
   trace instance is created for recording configurations, then the SSH
   session is closed and ``go`` is sent over the virtio-serial port: no
   harness process but the ~200 KiB agent lives in the guest while the
   workload runs.
5. ``done`` arrives on the port; DAMON is turned off, files are fetched, the
   record is converted, metrics are computed from the samples, and the result
   is written atomically with its provenance.

A failure (non-zero exit, timeout, guest death, harness error) never yields
numbers: the attempt is recorded under ``attempt-<n>/failure.json`` and, on
the last attempt, ``result.json`` says ``failed`` with the reason and log tail.

Step 1 is :mod:`~damon_eval.measure.plan`'s, steps 3-5 are
:mod:`~damon_eval.measure.execute`'s, the result is
:mod:`~damon_eval.measure.result`'s; this module opens the machine and keeps
the attempt's files.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from damon_eval.atomic import atomic_write_json
from damon_eval.config.campaign import Campaign
from damon_eval.errors import DamonEvalError, GuestError
from damon_eval.machine_select import MachineSelector, open_machine
from damon_eval.machines.protocol import Machine, is_persistent
from damon_eval.measure import noise, system
from damon_eval.measure.execute import execute_in_guest
from damon_eval.measure.noise import NoiseSettings
from damon_eval.measure.plan import (
    Failure,
    PhaseClock,
    RunPlan,
    RunRequest,
    campaign_guest,
    campaign_preparation,
    plan_run,
)
from damon_eval.measure.result import diagnostics, finish_result, result_skeleton, run_provenance

log = logging.getLogger(__name__)


@dataclass
class RunOutcome:
    status: str
    result_path: Path | None
    failure: Failure | None = None
    metrics: dict[str, float] = field(default_factory=dict)


def _promote(work_dir: Path, run_dir: Path) -> None:
    """Move a successful attempt's files to the run directory."""
    for item in work_dir.iterdir():
        target = run_dir / item.name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        item.replace(target)
    work_dir.rmdir()


def execute_run(request: RunRequest, machine: MachineSelector | None = None) -> RunOutcome:
    """Execute one attempt of one run on ``machine`` (default: a fresh guest as the
    campaign says); see the module docstring."""
    plan = plan_run(request)
    work_dir = request.attempt_dir
    if work_dir.exists():
        shutil.rmtree(work_dir)
    work_dir.mkdir(parents=True)
    parts: dict[str, Any] = {}
    clock = PhaseClock()
    parts["timings_s"] = clock.seconds
    selector = (machine or campaign_guest(request.campaign, request.key.kernel)).with_work_dir(
        work_dir
    )
    try:
        preparation = campaign_preparation(request.campaign)
        with (
            open_machine(selector, preparation) as guest,
            _settings_kept(guest),
            _pinned(request.campaign, selector, guest) as pinning,
        ):
            parts.setdefault("noise", {})["pinning"] = pinning
            clock.lap("guest_start")
            execute_in_guest(plan, guest, work_dir, parts, clock)
        clock.lap("guest_stop")
        result = finish_result(plan, parts, work_dir)
        clock.lap("finish")
    except Failure as failure:
        if not failure.log_tail:
            failure.log_tail = diagnostics(work_dir)
        return _record_failure(plan, failure, work_dir, parts)
    except GuestError as exc:
        failure = Failure("guest", str(exc), diagnostics(work_dir))
        return _record_failure(plan, failure, work_dir, parts)
    except DamonEvalError as exc:
        failure = Failure("harness", str(exc), diagnostics(work_dir))
        return _record_failure(plan, failure, work_dir, parts)
    atomic_write_json(work_dir / "result.json", result)
    _promote(work_dir, request.run_dir)
    return RunOutcome("ok", request.result_path, metrics=result["metrics"])


def _record_failure(
    plan: RunPlan, failure: Failure, work_dir: Path, parts: dict[str, Any]
) -> RunOutcome:
    request = plan.request
    log.error("run %s attempt %d failed: %s", request.key.relative_dir, request.attempt, failure)
    result = {
        **result_skeleton(plan),
        "status": "failed",
        "failure": {"kind": failure.kind, "reason": failure.reason, "log_tail": failure.log_tail},
        "metrics": {},
        "samples": None,
        "record": None,
        "provenance": run_provenance(plan, parts),
    }
    atomic_write_json(work_dir / "failure.json", result)
    if request.attempt >= request.max_attempts:
        atomic_write_json(request.result_path, result)
        return RunOutcome("failed", request.result_path, failure)
    return RunOutcome("failed", None, failure)


def _pinned(
    campaign: Campaign, selector: MachineSelector, machine: Machine
) -> contextlib.AbstractContextManager[dict[str, Any]]:
    """vCPU and harness pinning as ``noise.pin_cpus`` says (see :mod:`.noise`)."""
    explicit = campaign.settings["guest"].get("pin_vcpus")
    plan = noise.pin_plan(
        NoiseSettings.from_campaign(campaign.settings).pin_cpus,
        selector.guest.vcpus,
        os.sched_getaffinity(0),
        explicit=tuple(explicit) if explicit else None,
        not_here=_why_not_pinned_here(selector),
    )
    noise.warn_unpinned(plan)
    guest = machine if isinstance(machine, noise.QemuGuest) else None
    return noise.pinned(plan, guest)


def _why_not_pinned_here(selector: MachineSelector) -> str:
    if selector.kind == "fresh-guest":
        return ""
    if selector.kind == "guest":
        return "an attached guest (damon-eval guest boot) keeps its own placement"
    return f"the workload runs natively on {selector.describe()}, not in a guest of this run"


def _settings_kept(machine: Machine) -> contextlib.AbstractContextManager[object]:
    """A machine that outlives the run gets its system settings back afterwards."""
    return (
        system.preserved_settings(machine) if is_persistent(machine) else contextlib.nullcontext()
    )


__all__ = ["RunOutcome", "execute_run"]
