"""How the host talks to ``de-agent`` during a run: over a guest's port, or by polling.

:func:`agent_link` picks one for a machine:

* :class:`PortLink`, for guests: the agent's protocol on the virtio-serial
  port (``ready``/``go``/``done`` lines, docs/agent.md); no SSH session is
  open while the workload runs.
* :class:`PolledLink`, for machines without such a port (``--ssh``, local):
  the agent reads ``go``/``abort`` from a FIFO in its run directory; the host
  learns ``ready`` from ``target.pid`` and ``done`` from the ``status`` file
  (both written atomically by the agent).  While the workload runs, the
  host's only activity on the machine is one short SSH session per poll
  (connect, one ``cat``, disconnect), first after 1 s and then at doubling
  intervals up to ``poll_interval_s`` (10 s by default).

Both offer ``control_path`` (for ``de-agent --control``), ``setup_script``,
``started``, ``wait_ready``, ``go``, ``wait_done``, ``abort`` and ``close``.
"""

from __future__ import annotations

import contextlib
import logging
import shlex
import time
from typing import Any

from damon_eval.agent.build import GUEST_CONTROL_PATH, AgentError, AgentTimeout
from damon_eval.agent.protocol import AgentControl, format_go
from damon_eval.errors import DamonEvalError
from damon_eval.machines.protocol import Machine
from damon_eval.measure.samples import AgentOutputError, parse_status

log = logging.getLogger(__name__)

FIFO_NAME = "control.fifo"
ABORT_WAIT_S = 20.0


class LinkFailure(DamonEvalError):
    """The agent did not do what the link waited for; ``kind`` is a failure kind of
    result.json (``timeout``, ``guest``, ``harness``)."""

    def __init__(self, kind: str, reason: str):
        super().__init__(reason)
        self.kind = kind


class PortLink:
    """The agent over a guest's virtio-serial port."""

    control_path = GUEST_CONTROL_PATH

    def __init__(self, machine: Machine) -> None:
        self.machine = machine
        self.control = AgentControl(machine.control)
        self.agent_pid: int | None = None

    def setup_script(self) -> str:
        return ""

    def started(self, agent_stdout: str) -> None:
        self.agent_pid = _last_int(agent_stdout)

    def wait_ready(self, timeout_s: float) -> int:
        return self.control.wait_for(("ready",), timeout_s=timeout_s).pid

    def go(self, **params: Any) -> None:
        # Nothing of ours but the agent may stay in the guest while the workload runs.
        self.machine.disconnect()
        self.control.go(**params)

    def wait_done(self, timeout_s: float | None) -> str:
        """Wait for ``done`` while watching that QEMU is alive; returns its text."""
        deadline = time.monotonic() + timeout_s if timeout_s else None
        while True:
            remaining = deadline - time.monotonic() if deadline else 5.0
            if remaining <= 0:
                raise LinkFailure("timeout", f"no 'done' from the agent within {timeout_s:.0f} s")
            if not self.machine.is_alive():
                raise LinkFailure("guest", f"guest {self.machine.name} died during the workload")
            try:
                message = self.control.wait_for(("done", "error"), timeout_s=min(5.0, remaining))
            except AgentTimeout:
                continue
            if message.kind == "done":
                wait_agent_exit(self.machine, self.agent_pid)
                return message.text
            log.warning("agent: %s", message.text)

    def abort(self) -> None:
        """Tell the agent to kill the workload and finish; wait briefly for ``done``."""
        with contextlib.suppress(DamonEvalError, OSError):
            self.control.abort()
            self.control.wait_for(("done",), timeout_s=ABORT_WAIT_S, raise_on_error=False)

    def close(self) -> None:
        self.control.received.clear()


class PolledLink:
    """The agent through a FIFO and its files, for machines without a control port."""

    def __init__(
        self,
        machine: Machine,
        run_dir: str,
        *,
        poll_interval_s: float = 10.0,
        first_poll_s: float = 1.0,
        ready_poll_s: float = 0.3,
    ) -> None:
        self.machine = machine
        self.run_dir = run_dir
        self.poll_interval_s = max(poll_interval_s, first_poll_s)
        self.first_poll_s = first_poll_s
        self.ready_poll_s = ready_poll_s
        self.agent_pid: int | None = None
        self.nr_polls = 0
        self.finished = False

    @property
    def control_path(self) -> str:
        return f"{self.run_dir}/{FIFO_NAME}"

    def _file(self, name: str) -> str:
        return shlex.quote(f"{self.run_dir}/{name}")

    def setup_script(self) -> str:
        """Lines for the agent's start script, before the agent: the FIFO."""
        return f"mkfifo -m 600 {shlex.quote(self.control_path)}\n"

    def started(self, agent_stdout: str) -> None:
        self.agent_pid = _last_int(agent_stdout)
        if self.agent_pid is None:
            raise LinkFailure(
                "harness", f"the agent did not print its pid when detaching: {agent_stdout!r}"
            )

    def _probe(self) -> tuple[str | None, str | None, bool]:
        """(target.pid text, status text, agent alive) in one command."""
        result = self.machine.run(
            f"echo pid:$(cat {self._file('target.pid')} 2>/dev/null); "
            f"if [ -e {self._file('status')} ]; then echo status:; cat {self._file('status')}; fi; "
            f"kill -0 {self.agent_pid} 2>/dev/null && echo agent:alive; true",
            timeout_s=30,
        )
        self.nr_polls += 1
        pid_text, status_lines, alive, in_status = None, [], False, False
        for line in result.stdout.splitlines():
            if line.startswith("pid:"):
                pid_text = line[4:].strip() or None
            elif line == "status:":
                in_status = True
            elif line == "agent:alive":
                alive, in_status = True, False
            elif in_status:
                status_lines.append(line)
        status = "\n".join(status_lines) if status_lines else None
        return pid_text, status, alive

    def _agent_log_tail(self) -> str:
        with contextlib.suppress(DamonEvalError):
            tail = self.machine.run(
                f"tail -n 5 {self._file('agent.log')} {self._file('events.log')} 2>/dev/null",
                timeout_s=30,
            )
            return " | ".join(line for line in tail.stdout.splitlines() if line.strip())[-500:]
        return ""

    def wait_ready(self, timeout_s: float) -> int:
        deadline = time.monotonic() + timeout_s
        while True:
            pid_text, status, alive = self._probe()
            if pid_text:
                return int(pid_text)
            if status is not None or not alive:
                self.finished = True
                raise AgentError(
                    "the agent ended before its workload was ready: "
                    f"{_status_error(status) or 'no status'}; {self._agent_log_tail()}"
                )
            if time.monotonic() >= deadline:
                raise AgentTimeout(f"no ready from the agent within {timeout_s:g} s")
            time.sleep(self.ready_poll_s)

    def go(self, **params: Any) -> None:
        self._send(format_go(**params))
        # While the workload runs no SSH session of ours stays open there.
        self.machine.disconnect()

    def _send(self, line: str) -> None:
        # The agent holds the FIFO open read-write, so opening it to write never blocks
        # while the agent lives (and the remote `timeout` ends it otherwise).
        result = self.machine.run(
            f"printf '%s\\n' {shlex.quote(line)} > {shlex.quote(self.control_path)}",
            timeout_s=20,
        )
        if result.exit_status != 0:
            raise AgentError(
                f"cannot write {line.split()[0]!r} to the agent's FIFO {self.control_path} "
                f"(exit {result.exit_status}): {result.stderr.strip()[-200:]}"
            )

    def wait_done(self, timeout_s: float | None) -> str:
        """Poll for the agent's ``status`` file; returns ``done <status> <runtime_s>``."""
        deadline = time.monotonic() + timeout_s if timeout_s else None
        interval = self.first_poll_s
        while True:
            sleep_s = interval
            if deadline is not None:
                sleep_s = max(0.0, min(interval, deadline - time.monotonic()))
            time.sleep(sleep_s)
            interval = min(interval * 2, self.poll_interval_s)
            _, status, alive = self._probe()
            if status is not None:
                self.finished = True
                wait_agent_exit(self.machine, self.agent_pid)
                return _done_text(status)
            self.machine.disconnect()
            if not alive:
                self.finished = True
                raise LinkFailure(
                    "harness",
                    f"the agent (pid {self.agent_pid}) on {self.machine.name} is gone without "
                    f"writing its status; {self._agent_log_tail()}",
                )
            if deadline is not None and time.monotonic() >= deadline:
                raise LinkFailure("timeout", f"no status from the agent within {timeout_s:.0f} s")

    def abort(self) -> None:
        """Stop the agent and its workload (SIGTERM: the agent kills the workload's tree,
        drains the trace and writes its status); SIGKILL after :data:`ABORT_WAIT_S`."""
        if self.agent_pid is None or self.finished:
            return
        pid = self.agent_pid
        with contextlib.suppress(DamonEvalError):
            self.machine.run(f"kill -TERM {pid} 2>/dev/null; true", timeout_s=20)
            waited = self.machine.run(
                f"i=0; while kill -0 {pid} 2>/dev/null && [ $i -lt {int(ABORT_WAIT_S * 5)} ]; "
                "do sleep 0.2; i=$((i+1)); done; kill -0 "
                f"{pid} 2>/dev/null && echo alive; true",
                timeout_s=ABORT_WAIT_S + 10,
            )
            if "alive" in waited.stdout:
                log.warning("the agent (pid %d) ignored SIGTERM; killing it and its workload", pid)
                self.machine.run(
                    f"t=$(cat {self._file('target.pid')} 2>/dev/null); kill -KILL {pid}; "
                    '[ -n "$t" ] && kill -KILL -- "-$t" "$t" 2>/dev/null; true',
                    timeout_s=20,
                )
        self.finished = True

    def close(self) -> None:
        """Nothing to close: the FIFO goes with the run directory."""


def wait_agent_exit(machine: Machine, pid: int | None, timeout_s: float = 10.0) -> bool:
    """Wait until the agent process is gone (it closes the trace pipe only when it
    exits, and a tracefs instance cannot be removed while its pipe is open)."""
    if pid is None:
        return True
    result = machine.run(
        f"i=0; while kill -0 {pid} 2>/dev/null && [ $i -lt {int(timeout_s * 10)} ]; "
        f"do sleep 0.1; i=$((i+1)); done; kill -0 {pid} 2>/dev/null && echo alive; true",
        timeout_s=timeout_s + 10,
    )
    return "alive" not in result.stdout


def agent_link(
    machine: Machine, run_dir: str, *, poll_interval_s: float | None = None
) -> PortLink | PolledLink:
    """The link for ``machine``: its control port if it has one, else polling (at most
    every ``poll_interval_s``; default: the machine's ``poll_interval_s`` or 10 s)."""
    if getattr(machine, "control", None) is not None:
        return PortLink(machine)
    if poll_interval_s is None:
        poll_interval_s = float(getattr(machine, "poll_interval_s", 10.0))
    return PolledLink(machine, run_dir, poll_interval_s=poll_interval_s)


def _last_int(text: str) -> int | None:
    for line in reversed(text.strip().splitlines()):
        if line.strip().isdigit():
            return int(line.strip())
    return None


def _status_error(status: str | None) -> str:
    if not status:
        return ""
    try:
        parsed = parse_status(status)
    except AgentOutputError as exc:
        return str(exc)
    return f"status {parsed.status}" + (f": {parsed.error}" if parsed.error else "")


def _done_text(status: str) -> str:
    try:
        parsed = parse_status(status)
    except AgentOutputError as exc:
        raise LinkFailure("harness", f"the agent's status file is malformed: {exc}") from exc
    return f"done {parsed.status} {parsed.runtime_s:.6f}"


__all__ = [
    "FIFO_NAME",
    "LinkFailure",
    "PolledLink",
    "PortLink",
    "agent_link",
]
