"""Planning one run on the host, before any machine starts: what is run, where its
result goes, and everything validated (campaign, configuration, workload availability).

Also the vocabulary the other steps share: :class:`Failure` (why an attempt failed)
and :class:`PhaseClock` (the wall time of each phase).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from damon_eval.agent.build import GUEST_AGENT_PATH
from damon_eval.agent.preparation import agent_preparation
from damon_eval.config.campaign import Campaign, campaign_from_dict
from damon_eval.config.configuration import RunConfiguration
from damon_eval.config.runkey import RunKey
from damon_eval.errors import ConfigError
from damon_eval.machine_select import GuestSettings, MachineSelector
from damon_eval.machines.page_cache import DROP_CACHES_COMMAND
from damon_eval.measure.noise import benchmark_icount
from damon_eval.paths import resolve_config_path
from damon_eval.workloads import get_workload, require_available
from damon_eval.workloads.base import RunParams, WorkloadContext

if TYPE_CHECKING:
    from damon_eval.machines.preparation import Preparation

GUEST_RUN_DIR = "/var/tmp/damon-eval/run"


@dataclass(frozen=True, slots=True)
class RunRequest:
    """What to run, where its result goes, and which attempt this is."""

    campaign: Campaign
    key: RunKey
    result_path: Path
    attempt: int = 1
    max_attempts: int = 1

    @property
    def run_dir(self) -> Path:
        return self.result_path.parent

    @property
    def attempt_dir(self) -> Path:
        return self.run_dir / f"attempt-{self.attempt}"


@dataclass
class Failure(Exception):
    """Why an attempt failed: kind (exit|timeout|guest|harness), reason, log tail."""

    kind: str
    reason: str
    log_tail: str = ""

    def __str__(self) -> str:
        return f"{self.kind}: {self.reason}"


class PhaseClock:
    """Wall time of each phase of a run (host clock), kept in the provenance so
    the harness's fixed cost per run is visible.  :meth:`lap` ends a phase."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.monotonic()

    def lap(self, phase: str) -> None:
        now = time.monotonic()
        self.seconds[phase] = round(now - self._last, 3)
        self._last = now


def workload_scale(campaign: Campaign, workload_id: str) -> float:
    scales = campaign.settings.get("workload_scales") or {}
    return float(scales.get(workload_id, campaign.settings["workload_scale"]))


def parsec_input_size(parsec: dict[str, Any], workload_id: str) -> str | None:
    """The input a workload runs at: its ``parsec.inputs`` entry, else ``parsec.input``."""
    return (parsec.get("inputs") or {}).get(workload_id) or parsec.get("input")


def run_params(campaign: Campaign, workload_id: str) -> RunParams:
    parsec = campaign.settings.get("parsec") or {}
    return RunParams(
        out_dir=GUEST_RUN_DIR,
        scale=workload_scale(campaign, workload_id),
        threads=parsec.get("threads"),
        # the size the run uses (and its provenance records)
        input_size=parsec_input_size(parsec, workload_id),
        agent_path=GUEST_AGENT_PATH,
    )


@dataclass(frozen=True, slots=True)
class RunPlan:
    """Everything decided on the host before a guest boots."""

    request: RunRequest
    configuration: RunConfiguration
    workload: Any
    context: WorkloadContext
    params: RunParams


def plan_run(request: RunRequest) -> RunPlan:
    """Validate everything the run needs; raises ConfigError before any guest boots."""
    campaign, key = request.campaign, request.key
    configuration = campaign.configuration(key.config)
    campaign.kernel_value(key.kernel)  # the key names a kernel of the campaign (or none)
    if key.workload_id not in campaign.workloads:
        raise ConfigError(
            f"workload {key.workload_id!r} is not in campaign {campaign.name}: "
            f"{', '.join(campaign.workloads)}"
        )
    if not 1 <= request.attempt <= request.max_attempts:
        raise ConfigError(
            f"attempt {request.attempt} is out of range 1..{request.max_attempts} (--max-attempts)"
        )
    context = WorkloadContext.from_config(campaign.settings)
    workload = get_workload(key.workload_id)
    require_available(workload, context)
    return RunPlan(request, configuration, workload, context, run_params(campaign, key.workload_id))


def campaign_preparation(campaign: Campaign) -> Preparation:
    """The agent, the access generator and every workload of the campaign, uploaded
    and built once (in a guest: in the saved booted state, which its digest keys);
    the page cache is dropped last."""
    context = WorkloadContext.from_config(campaign.settings)
    plans = []
    for workload_id in campaign.workloads:
        workload = get_workload(workload_id)
        require_available(workload, context)
        plans.append(workload.prepare(context, run_params(campaign, workload_id)))
    return agent_preparation(plans, then=(DROP_CACHES_COMMAND,))


def campaign_guest(campaign: Campaign, kernel: str = "") -> MachineSelector:
    """A fresh guest as the campaign's ``guest:`` settings describe it, booting the
    campaign's kernel ``kernel`` (one of ``kernels:``; "" for ``guest.kernel``)."""
    settings = campaign.settings["guest"]
    pin = settings["pin_vcpus"]
    return MachineSelector.fresh_guest(
        GuestSettings(
            image_spec=resolve_config_path(settings["spec"]),
            vcpus=settings["vcpus"],
            memory_mib=settings["memory_mib"],
            accel=settings["accel"],
            fast_start=settings["fast_start"],
            pin_cpus=tuple(pin) if pin is not None else None,
            icount=benchmark_icount(),
            kernel=campaign.kernel_value(kernel),
            kernel_base=campaign.source.parent,
        )
    )


def load_campaign_argument(path: str | Path, overrides: dict | None = None) -> Campaign:
    """A campaign YAML, or the resolved ``campaign.json`` the pipeline writes."""
    path = Path(path)
    if path.suffix == ".json":
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read campaign {path}: {exc}") from exc
        return campaign_from_dict(data["settings"], data.get("source", str(path)), overrides)
    from damon_eval.config.campaign import load_campaign

    return load_campaign(path, overrides)
