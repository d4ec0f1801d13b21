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
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import logging
import shlex
import shutil
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from damon_eval import provenance
from damon_eval.agent.build import GUEST_AGENT_PATH
from damon_eval.agent.preparation import agent_preparation
from damon_eval.atomic import atomic_write_json
from damon_eval.config.campaign import Campaign, campaign_from_dict
from damon_eval.config.configuration import RunConfiguration
from damon_eval.config.runkey import RunKey
from damon_eval.damon.controller import (
    DamonController,
    DamonSession,
    OwnershipRegistry,
    build_kdamond,
)
from damon_eval.damon.iomem import IOMEM_PATH, system_ram_target
from damon_eval.damon.model import Target
from damon_eval.damon.tracing import TraceInstance, convert_trace_lines, find_tracefs
from damon_eval.errors import ConfigError, DamonEvalError, GuestError
from damon_eval.fs import FileSystem
from damon_eval.machine_select import GuestSettings, MachineSelector, open_machine
from damon_eval.machines.protocol import Machine, is_persistent, localize
from damon_eval.measure import system
from damon_eval.measure.link import LinkFailure, agent_link
from damon_eval.measure.samples import compute_metrics, load_agent_output
from damon_eval.paths import resolve_config_path
from damon_eval.workloads import get_workload, require_available
from damon_eval.workloads.base import RunParams, WorkloadContext

if TYPE_CHECKING:
    from damon_eval.machines.preparation import Preparation

log = logging.getLogger(__name__)

RESULT_SCHEMA_VERSION = 1
GUEST_RUN_DIR = "/var/tmp/damon-eval/run"
SYSFS_DAMON = "/sys/kernel/mm/damon/admin/kdamonds"
RECORD_FILE = "record.perf_script"
TRUTH_FILE = "truth.json"
# Files the agent writes that the host keeps.
AGENT_FILES = ("samples.csv", "status", "runtime", "events.log", "workload.log", "target.pid")
DONE_MARGIN_S = 180.0
# Ring buffer of our tracefs instance, per CPU: the agent drains it continuously
# (~15 KB/s of events at the default intervals), so 256 KiB holds many seconds,
# and the kernel memory recording costs stays small (the default is 1408 KiB/CPU).
TRACE_BUFFER_KIB_PER_CPU = 256
LOG_TAIL_LINES = 30


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


@dataclass
class RunOutcome:
    status: str
    result_path: Path | None
    failure: Failure | None = None
    metrics: dict[str, float] = field(default_factory=dict)


# ---------------------------------------------------------------- planning


def workload_scale(campaign: Campaign, workload_id: str) -> float:
    scales = campaign.settings.get("workload_scales") or {}
    return float(scales.get(workload_id, campaign.settings["workload_scale"]))


def run_params(campaign: Campaign, workload_id: str) -> RunParams:
    parsec = campaign.settings.get("parsec") or {}
    return RunParams(
        out_dir=GUEST_RUN_DIR,
        scale=workload_scale(campaign, workload_id),
        threads=parsec.get("threads"),
        input_size=parsec.get("input"),
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
    return agent_preparation(plans, then=(system.DROP_CACHES_COMMAND,))


# --------------------------------------------------------------- DAMON


@contextlib.contextmanager
def damon_for_run(
    guest: Machine, configuration: RunConfiguration, target_pid: int, registry_path: Path
) -> Iterator[tuple[DamonSession | None, TraceInstance | None]]:
    """Start the configuration's DAMON context on the workload (or System RAM),
    with a trace instance when it records; always turn both off."""
    damon = configuration.damon
    if not damon:
        yield None, None
        return
    fs: FileSystem = guest.fs
    attrs = configuration.monitoring_attrs()
    paddr = damon["operations"] == "paddr"
    controller = DamonController(fs, registry=OwnershipRegistry(registry_path))
    # One round trip reads DAMON's state, tracefs and /proc/iomem; the start uses it.
    probe = controller.probe(reads=(IOMEM_PATH,) if paddr else ())
    if paddr:
        targets = [system_ram_target(fs, text=probe.file(IOMEM_PATH))]
    else:
        targets = [Target(pid=target_pid)]
    kdamond, resolved = build_kdamond(
        damon["operations"], targets, attrs=attrs, resolved=configuration.schemes
    )
    with contextlib.ExitStack() as stack:
        instance = None
        if damon["record"]:
            instance = stack.enter_context(
                TraceInstance(fs, probe.tracefs, buffer_size_kb=TRACE_BUFFER_KIB_PER_CPU)
            )
        session = stack.enter_context(
            controller.session(
                kdamond, schemes=resolved, handle_signals=is_persistent(guest), probe=probe
            )
        )
        yield session, instance


# ---------------------------------------------------------------- a run


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# Streamed with SFTP: a record can be large; everything else comes in one tar.
LARGE_FILES = frozenset({"trace.txt"})


def _fetch(guest: Machine, names: tuple[str, ...], local_dir: Path) -> dict[str, int]:
    """Copy the agent's files that exist from the guest run directory: the
    small ones in one command (one tar, base64 on stdout), large ones by SFTP.
    Returns facts seen on the way (the record's page cache in bytes)."""
    small = " ".join(shlex.quote(n) for n in names if n not in LARGE_FILES)
    script = (
        f"cd {GUEST_RUN_DIR} 2>/dev/null || exit 0\n"
        f'set --\nfor f in {small}; do [ -f "$f" ] && set -- "$@" "$f"; done\n'
        "for f in " + " ".join(sorted(LARGE_FILES)) + '; do [ -f "$f" ] && echo "large $f"; done\n'
        '[ $# -eq 0 ] || { echo tar; tar -cf - -- "$@" | base64 -w 0; echo; }\n'
        # page cache still held by the record in the guest (the agent drops it as it writes)
        '[ ! -f trace.txt ] || echo "cached $(fincore -b -n -o RES trace.txt)"\n'
    )
    result = guest.run_script(script, timeout_s=120)
    if result.exit_status != 0:
        raise Failure("harness", f"cannot collect the run's files: {result.stderr.strip()[-300:]}")
    lines = result.stdout.splitlines()
    if "tar" in lines:
        payload = lines[lines.index("tar") + 1]
        with tarfile.open(fileobj=io.BytesIO(base64.b64decode(payload))) as archive:
            for member in archive.getmembers():
                if member.isfile() and member.name in names and "/" not in member.name:
                    (local_dir / member.name).write_bytes(archive.extractfile(member).read())
    facts: dict[str, int] = {}
    for line in lines:
        if line.startswith("large "):
            name = line.split(" ", 1)[1]
            if name in names:
                guest.get(f"{GUEST_RUN_DIR}/{name}", local_dir / name)
        elif line.startswith("cached ") and line.split()[-1].isdigit():
            facts["record_page_cache_bytes"] = int(line.split()[-1])
    return facts


def _start_agent(guest: Machine, plan: RunPlan, record: bool, link: Any) -> None:
    campaign = plan.request.campaign
    invocation = plan.workload.agent_invocation(
        plan.context,
        plan.params,
        interval_ms=int(campaign.settings["sample_interval_ms"]),
        control=link.control_path,
        timeout_s=float(campaign.settings["run_timeout_s"]),
        wait_timeout_s=300,
        trace_pipe=f"{find_tracefs(guest.fs)}/instances/damon-eval/trace_pipe" if record else None,
        record=f"{GUEST_RUN_DIR}/trace.txt" if record else None,
        drop_caches=True,
        detach=True,
    )
    script = (
        f"set -e\nrm -rf {GUEST_RUN_DIR}\nmkdir -p {GUEST_RUN_DIR}\n"
        f"{link.setup_script()}{invocation.shell()}\n"
    )
    # Machines other than guests keep the agent and workloads elsewhere (localize).
    result = guest.run_script(localize(guest, script), timeout_s=60)
    if result.exit_status != 0:
        raise Failure(
            "harness",
            f"the agent did not start (exit {result.exit_status}): "
            f"{(result.stderr or result.stdout).strip()[-300:]}",
        )
    link.started(result.stdout)


def held_target(guest: Machine, pid: int, plan: RunPlan) -> dict[str, Any]:
    """The process DAMON is about to target (held before its first instruction): its
    comm and executable.  Under a launcher (hold="child": parsecmgmt, run.sh) it must
    be the benchmark binary itself, or the run would measure a shell."""
    run_plan = plan.workload.run_plan(plan.context, plan.params)
    probe = guest.run(
        f"cat /proc/{pid}/comm; readlink /proc/{pid}/exe || true", timeout_s=30
    ).stdout.splitlines()
    comm = probe[0].strip() if probe else ""
    target = {"pid": pid, "comm": comm, "exe": probe[1].strip() if len(probe) > 1 else ""}
    # The kernel keeps 15 characters of a comm.
    if run_plan.hold == "child" and comm != run_plan.target[:15]:
        raise Failure(
            "harness",
            f"the held process {pid} is {comm!r} ({target['exe']}), not the benchmark "
            f"{run_plan.target!r}: DAMON would monitor the wrong process",
        )
    return target


def execute_in_guest(
    plan: RunPlan, guest: Machine, work_dir: Path, parts: dict[str, Any], clock: PhaseClock
) -> None:
    """Steps 3-5 on a started guest.  ``parts`` collects the result's pieces as
    they become known, so a failure still reports what was set up."""
    configuration = plan.configuration
    record = configuration.records
    parts["facts"] = guest.facts()
    wanted = (*AGENT_FILES, "agent.log", TRUTH_FILE, *(("trace.txt",) if record else ()))
    # The guest's virtio-serial port, or a FIFO polled over SSH on other machines.
    link = agent_link(guest, GUEST_RUN_DIR)
    try:
        parts["system"] = system.apply_system_settings(guest, configuration)
        version_probe = plan.workload.version_probe()
        if version_probe:
            parts["workload_versions"] = guest.run(version_probe, timeout_s=60).stdout.strip()
        build_check = plan.workload.build_check(plan.context)
        if build_check:
            checked = guest.run(build_check, timeout_s=60)
            if checked.exit_status != 0:
                lines = checked.stdout.strip().splitlines()
                raise Failure("build", lines[0] if lines else "build failed", "\n".join(lines[1:]))
        _start_agent(guest, plan, record, link)
        try:
            ready_pid = link.wait_ready(timeout_s=120)
            parts["target"] = held_target(guest, ready_pid, plan)
            clock.lap("setup")
            registry_path = work_dir / "owned-kdamonds.json"
            with damon_for_run(guest, configuration, ready_pid, registry_path) as (session, trace):
                go: dict[str, Any] = {}
                if session is not None:
                    go["kdamond_dir"] = f"{SYSFS_DAMON}/{session.handle.index}"
                    parts["damon"] = session.to_dict()
                if trace is not None:
                    # What recording costs the guest: the instance's ring buffers (kernel
                    # memory, allocated before sample 0) and, below, the record's page cache.
                    ring_kib = guest.fs.read(f"{trace.path}/buffer_total_size_kb")
                    parts["recording"] = {"ring_buffer_kib": int(ring_kib.split()[0])}
                clock.lap("damon_on")
                timeout_s = float(plan.request.campaign.settings["run_timeout_s"]) + DONE_MARGIN_S
                try:
                    # Nothing of ours but the agent stays on the machine while the workload runs.
                    link.go(**go)
                    # A vaddr kdamond stops by itself when its target exits: its final
                    # scheme stats are the agent's last sample, not read here.
                    parts["done"] = link.wait_done(timeout_s)
                except BaseException:
                    # On a machine that stays up the workload must not outlive the run, and
                    # the agent must release the trace instance before it is removed.
                    if is_persistent(guest):
                        link.abort()
                    raise
                clock.lap("workload")
            clock.lap("damon_off")
        except LinkFailure as failure:
            raise Failure(failure.kind, str(failure)) from failure
        finally:
            link.close()
    except BaseException:
        # Keep whatever the agent wrote: it says why.
        if guest.is_alive():
            with contextlib.suppress(DamonEvalError, OSError):
                _fetch(guest, wanted, work_dir)
        raise
    # Synthetic workloads write their ground truth next to the agent's files.
    fetched = _fetch(guest, wanted, work_dir)
    if "recording" in parts:
        parts["recording"].update(fetched)
    clock.lap("collect")


def _diagnostics(work_dir: Path) -> str:
    """The tails of the agent's logs, for a failure report."""
    parts = []
    for name in ("agent.log", "events.log", "workload.log", "console.log"):
        tail = _tail(work_dir / name, 10)
        if tail:
            parts.append(f"--- {name}\n{tail}")
    return "\n".join(parts)


def _result_skeleton(plan: RunPlan) -> dict[str, Any]:
    key, request = plan.request.key, plan.request
    return {
        "schema_version": RESULT_SCHEMA_VERSION,
        "run": {
            "suite": key.suite,
            "workload": key.workload,
            "config": key.config,
            "repeat": key.repeat,
            "attempt": request.attempt,
        },
    }


def _provenance(plan: RunPlan, parts: dict[str, Any] | None) -> dict[str, Any]:
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
        **_result_skeleton(plan),
        "status": "ok",
        "failure": None,
        "metrics": metrics,
        "samples": output.samples.to_json(interval_s),
        "record": record_info,
        "provenance": _provenance(plan, parts),
    }


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
    selector = (machine or campaign_guest(request.campaign)).with_work_dir(work_dir)
    try:
        preparation = campaign_preparation(request.campaign)
        with open_machine(selector, preparation) as guest, _settings_kept(guest):
            clock.lap("guest_start")
            execute_in_guest(plan, guest, work_dir, parts, clock)
        clock.lap("guest_stop")
        result = finish_result(plan, parts, work_dir)
        clock.lap("finish")
    except Failure as failure:
        if not failure.log_tail:
            failure.log_tail = _diagnostics(work_dir)
        return _record_failure(plan, failure, work_dir, parts)
    except GuestError as exc:
        failure = Failure("guest", str(exc), _diagnostics(work_dir))
        return _record_failure(plan, failure, work_dir, parts)
    except DamonEvalError as exc:
        failure = Failure("harness", str(exc), _diagnostics(work_dir))
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
        **_result_skeleton(plan),
        "status": "failed",
        "failure": {"kind": failure.kind, "reason": failure.reason, "log_tail": failure.log_tail},
        "metrics": {},
        "samples": None,
        "record": None,
        "provenance": _provenance(plan, parts),
    }
    atomic_write_json(work_dir / "failure.json", result)
    if request.attempt >= request.max_attempts:
        atomic_write_json(request.result_path, result)
        return RunOutcome("failed", request.result_path, failure)
    return RunOutcome("failed", None, failure)


def campaign_guest(campaign: Campaign) -> MachineSelector:
    """A fresh guest as the campaign's ``guest:`` settings describe it."""
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
            kernel=settings.get("kernel"),
            kernel_base=campaign.source.parent,
        )
    )


def _settings_kept(machine: Machine) -> contextlib.AbstractContextManager[object]:
    """A machine that outlives the run gets its system settings back afterwards."""
    return (
        system.preserved_settings(machine) if is_persistent(machine) else contextlib.nullcontext()
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


__all__ = [
    "Failure",
    "RunOutcome",
    "RunRequest",
    "execute_run",
    "load_campaign_argument",
    "plan_run",
]
