"""The agent's command line (:class:`AgentInvocation`) and its line protocol over
the control channel (:class:`AgentControl`, :func:`parse_message`, :func:`format_go`).

The protocol and the files the agent writes are documented in
``docs/agent.md``; parsing those files lives in :mod:`damon_eval.measure.samples`.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import select
import shlex
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from damon_eval.agent.build import GUEST_AGENT_PATH, AgentError, AgentTimeout
from damon_eval.errors import ConfigError, GuestError
from damon_eval.machines.control import ControlChannel, ControlTimeout
from damon_eval.machines.lines import DeadlineLines, LineTimeout

log = logging.getLogger(__name__)

HoldMode = Literal["exec", "child", "none"]
HOLD_MODES: tuple[str, ...] = ("exec", "child", "none")

# Keys `go` accepts (the agent refuses others).
GO_KEYS: tuple[str, ...] = ("kdamond_dir", "trace_pipe", "record", "timeout_s", "interval_ms")

# Exit codes of `de-agent run`.
AGENT_EXIT_OK = 0
AGENT_EXIT_WORKLOAD_FAILED = 1
AGENT_EXIT_HARNESS = 2


# --------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AgentInvocation:
    """One ``de-agent run`` command line."""

    out_dir: str
    command: tuple[str, ...]
    hold: HoldMode = "exec"
    interval_ms: int = 1000
    control: str | None = None
    timeout_s: float | None = None
    wait_timeout_s: float = 600
    kdamond_dir: str | None = None
    trace_pipe: str | None = None
    record: str | None = None
    drop_caches: bool = False
    workload_log: str | None = None
    cwd: str | None = None
    detach: bool = False
    agent_path: str = GUEST_AGENT_PATH

    def __post_init__(self) -> None:
        if self.hold not in HOLD_MODES:
            raise ConfigError(f"hold mode {self.hold!r} is not one of {', '.join(HOLD_MODES)}")
        if not self.command:
            raise ConfigError("the agent needs a command to run")
        if self.interval_ms <= 0:
            raise ConfigError(f"interval_ms must be positive, not {self.interval_ms}")
        if self.record and not self.trace_pipe:
            raise ConfigError("record is given without trace_pipe")

    def argv(self) -> list[str]:
        args = [self.agent_path, "run", "--out", self.out_dir, "--hold", self.hold]
        args += ["--interval-ms", str(self.interval_ms)]
        args += ["--wait-timeout-s", _num(self.wait_timeout_s)]
        if self.control:
            args += ["--control", self.control]
        if self.timeout_s:
            args += ["--timeout-s", _num(self.timeout_s)]
        if self.kdamond_dir:
            args += ["--kdamond-dir", self.kdamond_dir]
        if self.trace_pipe:
            args += ["--trace-pipe", self.trace_pipe]
        if self.record:
            args += ["--record", self.record]
        if self.drop_caches:
            args.append("--drop-caches")
        if self.workload_log:
            args += ["--workload-log", self.workload_log]
        if self.cwd:
            args += ["--cwd", self.cwd]
        if self.detach:
            args.append("--detach")
        return [*args, "--", *self.command]

    def shell(self) -> str:
        return shlex.join(self.argv())


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


# parsecmgmt `eval`s the submit prefix (twice): a target name must need no quoting.
TARGET_COMM_PATTERN = re.compile(r"[A-Za-z0-9._+-]+")


def hold_prefix(agent_path: str = GUEST_AGENT_PATH, target_comm: str | None = None) -> str:
    """The submit prefix for ``parsecmgmt -s``: holds the benchmark binary itself.

    With ``target_comm`` the launcher holds the first process of the submitted
    command's tree that execs with that name (comm), e.g. the binary SPLASH-2X's
    ``run.sh`` starts, and checks that the binary PARSEC runs is the expected one.
    """
    if target_comm is None:
        return f"{agent_path} hold --"
    if not TARGET_COMM_PATTERN.fullmatch(target_comm):
        raise ConfigError(
            f"target process name {target_comm!r} is not valid: expected letters, digits "
            f"and . _ + - only"
        )
    return f"{agent_path} hold --target-comm {target_comm} --"


# --------------------------------------------------------------------------
# protocol
# --------------------------------------------------------------------------

MESSAGE_KINDS: tuple[str, ...] = ("ready", "started", "done", "error", "pong")


@dataclass(frozen=True, slots=True)
class AgentMessage:
    """One agent->host line: ``kind`` and its whitespace-separated arguments."""

    kind: str
    args: tuple[str, ...] = ()
    text: str = ""

    @property
    def pid(self) -> int:
        if self.kind not in ("ready", "started") or not self.args:
            raise AgentError(f"message {self.text!r} carries no pid")
        return int(self.args[0])

    @property
    def status(self) -> str:
        if self.kind != "done":
            raise AgentError(f"message {self.text!r} is not a done message")
        return self.args[0]

    @property
    def runtime_s(self) -> float:
        if self.kind != "done" or len(self.args) < 2:
            raise AgentError(f"message {self.text!r} carries no runtime")
        return float(self.args[1])

    @property
    def error(self) -> str:
        return " ".join(self.args) if self.kind == "error" else ""


def parse_message(line: str) -> AgentMessage:
    """Parse one agent->host line (``ready 123``, ``done ok 12.5``, ``error ...``)."""
    text = line.strip()
    kind, _, rest = text.partition(" ")
    if kind not in MESSAGE_KINDS:
        raise AgentError(
            f"unknown agent message {text!r}; expected one of {', '.join(MESSAGE_KINDS)}"
        )
    args = tuple(rest.split()) if kind != "error" else ((rest,) if rest else ())
    message = AgentMessage(kind, args, text)
    try:
        if kind in ("ready", "started"):
            message.pid  # noqa: B018  (validates)
        elif kind == "done":
            message.runtime_s  # noqa: B018
    except (ValueError, IndexError) as exc:
        raise AgentError(f"malformed agent message {text!r}") from exc
    return message


def format_go(**params: str | int | float) -> str:
    """``go key=value ...``; keys are checked against :data:`GO_KEYS`."""
    parts = ["go"]
    for key, value in params.items():
        if value is None:
            continue
        if key not in GO_KEYS:
            raise ConfigError(f"unknown go parameter {key!r}; valid: {', '.join(GO_KEYS)}")
        text = str(value)
        if not text or any(c.isspace() for c in text):
            raise ConfigError(f"go parameter {key}={text!r} must be non-empty without spaces")
        parts.append(f"{key}={text}")
    return " ".join(parts)


class FdChannel:
    """Lines over file descriptors: a pty (a character device like the
    virtio-serial port) or FIFOs.  The same interface as the guest's
    :class:`~damon_eval.machines.control.ControlChannel`."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self.read_fd = read_fd
        self.write_fd = write_fd
        self._lines = DeadlineLines(self._receive)

    def send_line(self, text: str) -> None:
        data = (text + "\n").encode()
        while data:
            _, writable, _ = select.select([], [self.write_fd], [], 10)
            if not writable:
                raise AgentTimeout(f"control channel not writable while sending {text!r}")
            data = data[os.write(self.write_fd, data) :]

    def read_line(self, timeout_s: float) -> str:
        try:
            line = self._lines.read_line(time.monotonic() + timeout_s)
        except LineTimeout:
            raise ControlTimeout(f"no line on the control channel within {timeout_s:g} s") from None
        return line.decode(errors="replace")

    def _receive(self, remaining: float) -> bytes | None:
        readable, _, _ = select.select([self.read_fd], [], [], remaining)
        if not readable:
            return None
        try:
            chunk = os.read(self.read_fd, 4096)
        except BlockingIOError:
            return None
        except OSError as exc:
            # EIO: a pty master whose other end is not open (yet)
            if exc.errno != errno.EIO:
                raise
            chunk = b""
        if not chunk:
            # EOF or a pty/port without its other end: wait a bit, then retry
            time.sleep(0.05)
            return None
        return chunk

    def close(self) -> None:
        """The descriptors belong to the caller."""


class LineChannel(Protocol):
    def send_line(self, text: str) -> None: ...
    def read_line(self, timeout_s: float) -> str: ...
    def close(self) -> None: ...


@dataclass
class AgentControl:
    """The host end of the agent's protocol over a line channel: the guest's
    virtio-serial port (:class:`~damon_eval.machines.control.ControlChannel`) or
    file descriptors (:class:`FdChannel`)."""

    channel: LineChannel
    received: list[AgentMessage] = field(default_factory=list)

    @classmethod
    def over_fds(cls, read_fd: int, write_fd: int) -> AgentControl:
        return cls(FdChannel(read_fd, write_fd))

    @classmethod
    def connect_unix(cls, path: str | Path, timeout_s: float = 30) -> AgentControl:
        """Connect to QEMU's chardev socket behind the virtio-serial port."""
        try:
            return cls(ControlChannel.connect(Path(path), timeout_s, guest_name=str(path)))
        except GuestError as exc:
            raise AgentError(f"cannot connect to the control socket {path}: {exc}") from exc

    def close(self) -> None:
        self.channel.close()

    def send(self, line: str) -> None:
        self.channel.send_line(line.rstrip("\n"))

    def go(self, **params: str | int | float) -> None:
        self.send(format_go(**params))

    def abort(self) -> None:
        self.send("abort")

    def ping(self) -> None:
        self.send("ping")

    def wait_for(
        self, kinds: Sequence[str], timeout_s: float, *, raise_on_error: bool = True
    ) -> AgentMessage:
        """The next message whose kind is in ``kinds``; ``error`` raises unless asked for."""
        deadline = time.monotonic() + timeout_s
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                line = self.channel.read_line(remaining).strip()
            except ControlTimeout:
                break
            if not line:
                continue
            if line.partition(" ")[0] not in MESSAGE_KINDS:
                # e.g. the guest's own boot-readiness line on the shared port
                log.info("ignoring a non-agent line on the control channel: %r", line)
                continue
            message = parse_message(line)
            self.received.append(message)
            if message.kind in kinds:
                return message
            if message.kind == "error" and raise_on_error:
                raise AgentError(f"agent reported: {message.error}")
        raise AgentTimeout(f"no {'/'.join(kinds)} message from the agent within {timeout_s} s")
