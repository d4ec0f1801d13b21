"""``damon-eval record``: record a workload's accesses with DAMON into a perf-script record.

The seed's ``damo record <command>|<pid>`` on any machine the harness reaches:
a guest, a remote machine (``--ssh``) or this one.  The same agent as a
measured run does the work on the machine:

* a **command** (or a registered workload) is started by ``de-agent`` held at
  exec; DAMON is set up on its pid (vaddr) or on System RAM (paddr) and the
  trace instance created before it is released, so no early access is missed;
* a **pid** is attached to as it is (vaddr); the agent then runs a watcher
  that ends when the process does;
* with ``--ops paddr`` and neither, physical memory is recorded until Ctrl-C
  or ``--duration``.

The agent streams the instance's ``trace_pipe`` to a file on the machine; it
comes back at the end and is converted (:func:`publish_record`): only complete
lines and complete snapshots are kept, and the record file appears
atomically.  Ctrl-C, SIGTERM and SIGHUP end the recording cleanly: the agent
stops (a command it started is killed), DAMON is turned off, the trace
instance is removed, and the record so far is written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import shlex
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TextIO

from damon_eval.agent.build import GUEST_AGENT_PATH, AgentError
from damon_eval.agent.preparation import agent_preparation
from damon_eval.agent.protocol import AgentInvocation
from damon_eval.atomic import atomic_open
from damon_eval.damon.controller import (
    DamonController,
    OwnershipRegistry,
    build_kdamond,
    refuse_if_damon_busy,
)
from damon_eval.damon.errors import DamonError, DamonMissingError, DamonUnsupportedError
from damon_eval.damon.iomem import system_ram_target
from damon_eval.damon.model import MonitoringAttrs, Target
from damon_eval.damon.sysfs_layout import SYSFS_ADMIN
from damon_eval.damon.tracing import RECORD_EVENT, TraceConverter, TraceInstance
from damon_eval.errors import ConfigError, DamonEvalError
from damon_eval.machines.protocol import Machine, is_persistent, kernel_path, localize
from damon_eval.machines.signals import terminate_as_interrupt
from damon_eval.measure.link import LinkFailure, agent_link
from damon_eval.measure.samples import AgentOutputError, parse_status

if TYPE_CHECKING:
    from damon_eval.machines.preparation import Preparation

log = logging.getLogger(__name__)

RECORD_RUN_DIR = "/var/tmp/damon-eval/record"
DEFAULT_OUTPUT = Path(
    "damon.data"
)  # the seed's `damo record` default; the content is perf-script text
OPERATIONS = ("vaddr", "paddr")
READY_TIMEOUT_S = 120.0


@dataclass(frozen=True, slots=True)
class RecordTarget:
    """What to record: a command line, a running process, a workload, or nothing (paddr)."""

    kind: Literal["command", "pid", "workload", "memory"]
    command: tuple[str, ...] = ()
    pid: int | None = None
    workload: str | None = None
    scale: float = 1.0

    def describe(self) -> str:
        if self.kind == "command":
            return shlex.join(self.command)
        if self.kind == "pid":
            return f"pid {self.pid}"
        if self.kind == "workload":
            return f"workload {self.workload} (scale {self.scale:g})"
        return "physical memory"


def parse_target(words: Iterable[str], *, workload: str | None = None, scale: float = 1.0,
                 operations: str = "vaddr") -> RecordTarget:  # fmt: skip
    """The target from the command line: one number is a pid, one word with spaces a
    shell command (as ``damo record "sleep 5"``), several words a command's argv."""
    words = tuple(words)
    if words and words[0] == "--":
        words = words[1:]
    if workload and words:
        raise ConfigError(
            f"give either --workload {workload} or a command/pid, not both "
            f"(got {shlex.join(words)!r})"
        )
    if workload:
        return RecordTarget("workload", workload=workload, scale=scale)
    if not words:
        if operations == "paddr":
            return RecordTarget("memory")
        raise ConfigError(
            "nothing to record: give a command (damon-eval record -- ./prog args), a pid, or "
            "--workload ID; with --ops paddr alone, physical memory is recorded"
        )
    if len(words) == 1 and words[0].isdigit():
        pid = int(words[0])
        if not 1 <= pid <= 2**31 - 1:
            raise ConfigError(f"pid {pid} is out of range")
        return RecordTarget("pid", pid=pid)
    if len(words) == 1 and (any(c.isspace() for c in words[0]) or _has_shell_syntax(words[0])):
        return RecordTarget("command", command=("sh", "-c", f"exec {words[0]}"))
    return RecordTarget("command", command=words)


def _has_shell_syntax(text: str) -> bool:
    return any(c in text for c in "|&;<>()$`*?~")


@dataclass(frozen=True, slots=True)
class RecordRequest:
    target: RecordTarget
    output: Path = DEFAULT_OUTPUT
    operations: str = "vaddr"
    attrs: MonitoringAttrs = field(default_factory=MonitoringAttrs)
    duration_s: float | None = None
    poll_interval_s: float = 10.0

    def __post_init__(self) -> None:
        if self.operations not in OPERATIONS:
            raise ConfigError(
                f"--ops {self.operations!r} is not supported; valid: {', '.join(OPERATIONS)}"
            )
        if self.operations == "vaddr" and self.target.kind == "memory":
            raise ConfigError("vaddr monitoring needs a command, a pid or a workload")
        if self.operations == "paddr" and self.target.kind == "pid":
            raise ConfigError(
                "--ops paddr monitors physical memory, not a process: drop the pid (record "
                "until Ctrl-C or --duration) or use vaddr"
            )
        if self.duration_s is not None and not self.duration_s > 0:
            raise ConfigError(f"--duration {self.duration_s} must be > 0 seconds")


@dataclass(frozen=True, slots=True)
class RecordOutcome:
    output: Path
    nr_snapshots: int
    nr_events: int
    nr_lost_events: int
    nr_dropped_lines: int
    status: str
    runtime_s: float | None
    interrupted: bool
    target_pid: int | None
    exit_code: int | None = None

    def summary(self) -> str:
        what = f"{self.nr_snapshots} snapshots ({self.nr_events} region lines)"
        notes = []
        if self.nr_lost_events:
            notes.append(f"the kernel dropped {self.nr_lost_events} events")
        if self.nr_dropped_lines:
            notes.append(f"dropped {self.nr_dropped_lines} line(s) of an unfinished snapshot")
        ended = {
            "ok": "the target ended",
            "failed": f"the command failed (exit code {self.exit_code})",
            "killed": "the command was killed",
            "timeout": "--duration reached",
            "aborted": "stopped by a signal",
        }.get(self.status, f"agent status {self.status}")
        if self.interrupted and self.status != "aborted":
            ended += " (stopped by a signal)"
        runtime = f" after {self.runtime_s:.1f} s" if self.runtime_s is not None else ""
        extra = f"; {'; '.join(notes)}" if notes else ""
        return f"recorded {what} to {self.output}: {ended}{runtime}{extra}"


# ----------------------------------------------------------------- records


@dataclass
class _SnapshotFilter:
    """Passes converted lines on in whole snapshots: ``nr_regions`` lines of one target in
    ascending address order.  A snapshot that lost lines (the kernel dropped events, or
    the stream was cut) ends where the next begins and is dropped, not glued to it."""

    out: TextIO
    pending: dict[str, list[str]] = field(default_factory=dict)
    last_end: dict[str, int] = field(default_factory=dict)
    expected: dict[str, int] = field(default_factory=dict)
    nr_snapshots: int = 0
    nr_dropped: int = 0

    def feed(self, line: str) -> None:
        body = line.split(f"damon:{RECORD_EVENT}: ", 1)[1].split()
        target = body[0].partition("=")[2]
        expected = int(body[1].partition("=")[2])
        start, _, end = body[2].rstrip(":").partition("-")
        block = self.pending.setdefault(target, [])
        if block and (int(start) < self.last_end[target] or expected != self.expected[target]):
            self.nr_dropped += len(block)
            block.clear()
        block.append(line)
        self.expected[target] = expected
        self.last_end[target] = int(end)
        if len(block) == expected:
            self.out.write("\n".join(block) + "\n")
            self.nr_snapshots += 1
            block.clear()

    @property
    def nr_unfinished_lines(self) -> int:
        return self.nr_dropped + sum(len(block) for block in self.pending.values())


def publish_record(trace_lines: Iterable[str], output: Path) -> tuple[int, int, int, int]:
    """Convert raw ``trace_pipe`` lines into a perf-script record at ``output``, atomically.

    A last line without its newline (the stream was cut) and the lines of a
    snapshot that did not finish are dropped, so the record holds only
    complete snapshots.  Returns ``(snapshots, events, lost events, dropped lines)``.
    """
    converter = TraceConverter()
    with atomic_open(output, "w", suffix=".partial") as out:
        snapshots = _SnapshotFilter(out)
        cut = 0
        for line in trace_lines:
            if not line.endswith("\n"):
                cut += 1  # only the stream's last line can lack it
                continue
            converted = converter.feed(line)
            if converted is not None:
                snapshots.feed(converted)
    dropped = snapshots.nr_unfinished_lines + cut
    stats = converter.stats
    return (
        snapshots.nr_snapshots,
        stats.nr_events - snapshots.nr_unfinished_lines,
        (stats.nr_lost_events),
        dropped,
    )


# ----------------------------------------------------------------- the flow


def record_preparation(target: RecordTarget) -> Preparation:
    """What the machine needs: the agent, and the workload's files when recording one
    (the preparation of a one-workload campaign, so a guest reuses its saved state)."""
    if target.kind == "workload":
        from damon_eval.config.campaign import campaign_from_dict
        from damon_eval.measure.plan import campaign_preparation

        campaign = campaign_from_dict(
            {
                "campaign": "record",
                "workloads": [target.workload],
                "configs": ["orig"],
                "workload_scale": target.scale,
            },
            "<damon-eval record>",
        )
        return campaign_preparation(campaign)
    return agent_preparation()


# a zombie still answers kill -0: stop when the process is one (state Z or X)
_ZOMBIE_CHECK = (
    "case $(sed 's/.*) //' /proc/{pid}/stat 2>/dev/null | cut -c1) in Z|X|'') exit 0;; esac;"
)


def _invocation(request: RecordRequest, link: Any, trace_pipe: str, agent_path: str,
                run_dir: str) -> AgentInvocation:  # fmt: skip
    target = request.target
    common: dict[str, Any] = {
        "control": link.control_path,
        "timeout_s": request.duration_s,
        "wait_timeout_s": READY_TIMEOUT_S + 60,
        "trace_pipe": trace_pipe,
        "record": f"{run_dir}/trace.txt",
        "detach": True,
    }
    if target.kind == "workload":
        from damon_eval.workloads import get_workload, require_available
        from damon_eval.workloads.base import RunParams, WorkloadContext

        workload = get_workload(target.workload or "")
        context = WorkloadContext.from_config({})
        require_available(workload, context)
        params = RunParams(out_dir=run_dir, scale=target.scale, agent_path=agent_path)
        return workload.agent_invocation(context, params, **common)
    if target.kind == "command":
        command, hold = target.command, "exec"
    elif target.kind == "pid":
        # The agent needs something to run: a watcher that ends with the process.
        check = _ZOMBIE_CHECK.format(pid=target.pid)
        command = ("sh", "-c", f"while kill -0 {target.pid} 2>/dev/null; do {check} sleep 1; done")
        hold = "none"
    else:
        command, hold = ("sh", "-c", "while :; do sleep 3600; done"), "none"
    return AgentInvocation(
        out_dir=run_dir,
        command=command,
        hold=hold,
        agent_path=agent_path,
        workload_log="-" if target.kind == "pid" else None,
        **common,
    )


def _check_machine(machine: Machine, controller: DamonController, request: RecordRequest) -> str:
    """DAMON there, the operations and tracepoint we need, nothing else running: its tracefs."""
    features = controller.features()
    if features.operations is not None and request.operations not in features.operations:
        raise DamonUnsupportedError(
            f"{machine.name}: DAMON there offers {', '.join(features.operations)}, "
            f"not {request.operations}"
        )
    if features.interface != "sysfs":
        raise DamonUnsupportedError(
            f"{machine.name} has the {features.interface} interface only; recording needs "
            f"the sysfs interface (Linux 5.18+) and the damon:{RECORD_EVENT} tracepoint"
        )
    if not features.tracefs:
        raise DamonMissingError(
            f"{machine.name}: tracefs is not mounted (mount -t tracefs nodev /sys/kernel/tracing)"
        )
    if RECORD_EVENT not in features.tracepoints:
        raise DamonUnsupportedError(
            f"{machine.name}: its kernel has no damon:{RECORD_EVENT} tracepoint"
        )
    refuse_if_damon_busy(machine, controller, proc_dir=kernel_path(machine, "/proc"))
    if request.target.kind == "pid":
        alive = machine.run(f"kill -0 {request.target.pid}", timeout_s=30).exit_status == 0
        if not alive:
            raise ConfigError(f"no process with pid {request.target.pid} on {machine.name}")
    return features.tracefs


def _start_agent(machine: Machine, invocation: AgentInvocation, link: Any) -> None:
    run_dir = shlex.quote(invocation.out_dir)
    script = (
        f"set -e\nrm -rf {run_dir}\nmkdir -p {run_dir}\n{link.setup_script()}{invocation.shell()}\n"
    )
    result = machine.run_script(localize(machine, script), timeout_s=60)
    if result.exit_status != 0:
        raise AgentError(
            f"the agent did not start on {machine.name} (exit {result.exit_status}): "
            f"{(result.stderr or result.stdout).strip()[-300:]}"
        )
    link.started(result.stdout)


def _targets(machine: Machine, request: RecordRequest, pid: int | None) -> list[Target]:
    if request.operations == "paddr":
        return [system_ram_target(machine.fs)]
    return [Target(pid=pid)]


@contextlib.contextmanager
def _target_alive(machine: Machine, pid: int | None) -> Iterator[None]:
    """A process that exits just before DAMON starts makes the kernel refuse; say so."""
    try:
        yield
    except DamonError:
        if pid is not None and machine.run(f"kill -0 {pid}", timeout_s=30).exit_status != 0:
            raise ConfigError(
                f"process {pid} on {machine.name} exited before DAMON could start on it"
            ) from None
        raise


@contextlib.contextmanager
def _stop_on_interrupt(link: Any, state: dict[str, Any]) -> Iterator[None]:
    """Ctrl-C/SIGTERM end the wait: the agent stops, the block ends normally."""
    try:
        yield
    except KeyboardInterrupt:
        log.info("stopping the recording")
        state["interrupted"] = True
        link.abort()


def record(
    machine: Machine,
    request: RecordRequest,
    *,
    registry: OwnershipRegistry | None = None,
    agent_path: str | None = None,
    run_dir: str | None = None,
) -> RecordOutcome:
    """Record ``request.target`` on ``machine`` into ``request.output``; see the module
    docstring.  ``agent_path``: the agent's path there (default: the prepared one);
    ``run_dir``: the agent's directory there (default :data:`RECORD_RUN_DIR`)."""
    fs = machine.fs
    run_dir = run_dir or RECORD_RUN_DIR
    controller = DamonController(fs, registry=registry)
    agent_path = agent_path or localize(machine, GUEST_AGENT_PATH)
    state: dict[str, Any] = {"interrupted": False}
    with terminate_as_interrupt():
        tracefs = _check_machine(machine, controller, request)
        instance = TraceInstance(fs, tracefs)
        link = agent_link(machine, run_dir, poll_interval_s=request.poll_interval_s)
        invocation = _invocation(
            request, link, kernel_path(machine, instance.trace_pipe), agent_path, run_dir
        )
        held = invocation.hold != "none"
        started = time.monotonic()
        try:
            if held:
                _start_agent(machine, invocation, link)
                with _stop_on_interrupt(link, state):
                    pid = link.wait_ready(READY_TIMEOUT_S)
                if state["interrupted"]:
                    raise KeyboardInterrupt
                kdamond, _ = build_kdamond(
                    request.operations, _targets(machine, request, pid), attrs=request.attrs
                )
                with instance, controller.session(kdamond) as session:
                    kdamond_dir = kernel_path(
                        machine, f"{SYSFS_ADMIN}/kdamonds/{session.handle.index}"
                    )
                    with _stop_on_interrupt(link, state):
                        link.go(kdamond_dir=kdamond_dir)
                        state["done"] = link.wait_done(None)
            else:
                pid = request.target.pid
                kdamond, _ = build_kdamond(
                    request.operations, _targets(machine, request, pid), attrs=request.attrs
                )
                with instance, _target_alive(machine, pid), controller.session(kdamond) as session:
                    kdamond_dir = kernel_path(
                        machine, f"{SYSFS_ADMIN}/kdamonds/{session.handle.index}"
                    )
                    invocation = dataclasses.replace(invocation, kdamond_dir=kdamond_dir)
                    _start_agent(machine, invocation, link)
                    with _stop_on_interrupt(link, state):
                        state["done"] = link.wait_done(None)
        except LinkFailure as failure:
            raise AgentError(f"recording on {machine.name}: {failure}") from failure
        except BaseException:
            link.abort()
            raise
        finally:
            link.close()
        return _collect(machine, request, state, time.monotonic() - started, run_dir)


def _collect(machine: Machine, request: RecordRequest, state: dict[str, Any],
             elapsed_s: float, run_dir: str) -> RecordOutcome:  # fmt: skip
    """Fetch the agent's trace and status; write the record."""
    with tempfile.TemporaryDirectory(prefix="damon-eval-record-") as scratch:
        local_trace = Path(scratch) / "trace.txt"
        local_status = Path(scratch) / "status"
        machine.get(f"{run_dir}/status", local_status)
        try:
            status = parse_status(local_status.read_text())
        except AgentOutputError as exc:
            raise AgentError(f"the agent's status on {machine.name} is unreadable: {exc}") from exc
        if status.status == "error":
            raise AgentError(
                f"recording {request.target.describe()} on {machine.name} failed: {status.error}"
            )
        try:
            machine.get(f"{run_dir}/trace.txt", local_trace)
        except DamonEvalError as exc:
            raise AgentError(f"the agent left no trace on {machine.name}: {exc}") from exc
        if is_persistent(machine):
            with contextlib.suppress(DamonEvalError):
                machine.run(f"rm -f {shlex.quote(run_dir)}/trace.txt", timeout_s=30)
        with local_trace.open(newline="") as lines:
            snapshots, events, lost, dropped = publish_record(lines, request.output)
    runtime = status.runtime_s if status.runtime_s else round(elapsed_s, 3)
    return RecordOutcome(
        output=request.output,
        nr_snapshots=snapshots,
        nr_events=events,
        nr_lost_events=lost,
        nr_dropped_lines=dropped,
        status=status.status,
        runtime_s=runtime,
        interrupted=state["interrupted"],
        target_pid=status.target_pid or request.target.pid,
        exit_code=status.exit_code,
    )
