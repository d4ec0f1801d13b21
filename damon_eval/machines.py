"""Machines the harness runs things on, and what it must do on those it does not own.

A *machine* is anything with the interface the run and record code use:

=====================  ==========================================================
``name``               how errors name it
``run(cmd, timeout_s)`` one shell command under ``timeout -k`` -> CommandResult
``run_script(s, t)``   a script on stdin of one ``sh -s``
``fs``                 a :class:`~damon_eval.fs.FileSystem` (ShellFs: one round trip per batch)
``put``/``get``        copy one file there / back
``facts()``            what a result records about the machine
``is_alive()``         whether it is still there
``disconnect()``       close the SSH connection (the next command reconnects)
``control``            a line channel to the agent (a guest's virtio-serial port) or None
=====================  ==========================================================

Three kinds exist: :class:`damon_eval.guest.machine.Guest` (a QEMU guest the
harness boots and throws away), :class:`damon_eval.remote.RemoteMachine`
(``--ssh``) and :class:`LocalMachine` (this machine).  The last two are
*persistent*: they outlive the run, so the harness

* installs its agent and workloads under ``/var/tmp/damon-eval/<digest>``
  instead of the guest image's ``/opt/damon-eval`` (:func:`prepare_machine`;
  a preparation already there is reused),
* restores every system setting it changes (:mod:`damon_eval.remote`),
* stops the agent and its workload when it is interrupted.

:func:`localize`, :func:`is_persistent` and :func:`kernel_path` read the
optional attributes with the defaults a guest needs, so guests need none of
them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from damon_eval.errors import DamonEvalError, GuestError
from damon_eval.fs import CommandResult, LocalFs
from damon_eval.ssh import HOST_GRACE_S, KILL_AFTER_S, remote_command, script_command

log = logging.getLogger(__name__)

GUEST_PREFIX = "/opt/damon-eval"  # where the guest image keeps the harness's files
PERSISTENT_BASE = "/var/tmp/damon-eval"  # where persistent machines keep them, per digest
PREPARED_STAMP = ".prepared"
TEXT_SUFFIXES = (".sh", ".cfg", ".sql", ".py", ".c")
NONE_ACCEL = "none (bare metal or foreign VM)"
# the prefix as a whole path component (not /opt/damon-evalx)
_GUEST_PREFIX_RE = re.compile(re.escape(GUEST_PREFIX) + r"(?![\w.-])")


class PreparationError(GuestError):
    """Uploading or building the agent/workloads on a machine failed."""


def localize(machine: Any, text: str) -> str:
    """``text`` with guest paths (``/opt/damon-eval``) mapped to the machine's."""
    mapper = getattr(machine, "localize", None)
    return mapper(text) if mapper is not None else text


def is_persistent(machine: Any) -> bool:
    """Whether the machine outlives the run (remote, local): clean up on it."""
    return bool(getattr(machine, "persistent", False))


def kernel_path(machine: Any, path: str) -> str:
    """A kernel interface path as processes on the machine see it (a fake tree maps it)."""
    mapper = getattr(machine, "kernel_path", None)
    return mapper(path) if mapper is not None else path


def map_prefix(text: str, prefix: str | None) -> str:
    """Replace the guest prefix ``/opt/damon-eval`` by ``prefix`` (None: unchanged)."""
    if not prefix:
        return text
    return _GUEST_PREFIX_RE.sub(lambda _: prefix, text)


def prepared_prefix(digest: str, base: str = PERSISTENT_BASE) -> str:
    return f"{base}/{digest}"


def prepare_machine(machine: Any, preparation: Any, *, base: str = PERSISTENT_BASE) -> str:
    """Upload and build a :class:`~damon_eval.guest.machine.Preparation` on a persistent
    machine under ``<base>/<digest>``; returns that prefix.

    A prefix with its stamp file is reused as it is: the digest covers every
    uploaded file's content, its path and every command.  Text files (scripts,
    configs, C sources) and commands get ``/opt/damon-eval`` mapped to the
    prefix.  A failed command leaves no stamp, so the next attempt redoes all.
    """
    digest = preparation.digest()
    prefix = prepared_prefix(digest, base)
    stamp = f"{prefix}/{PREPARED_STAMP}"
    if machine.run(f"test -e {shlex.quote(stamp)}", timeout_s=30).exit_status == 0:
        log.info("%s: using the preparation in %s", machine.name, prefix)
        return prefix
    log.info("%s: preparing the agent and workloads in %s", machine.name, prefix)
    with tempfile.TemporaryDirectory(prefix="damon-eval-prep-") as scratch:
        for index, (local, dest) in enumerate(preparation.uploads):
            local = Path(local)
            source = local
            if local.suffix in TEXT_SUFFIXES:
                text = local.read_text()
                mapped = map_prefix(text, prefix)
                if mapped != text:
                    source = Path(scratch) / f"{index}-{local.name}"
                    source.write_text(mapped)
                    source.chmod(local.stat().st_mode & 0o7777)
            target = map_prefix(dest, prefix)
            machine.run(f"mkdir -p {shlex.quote(os.path.dirname(target) or '/')}", timeout_s=30)
            machine.put(source, target)
    for command in preparation.commands:
        result = machine.run(map_prefix(command, prefix), timeout_s=preparation.timeout_s)
        if result.exit_status != 0:
            output = (result.stderr or result.stdout).strip().splitlines()[-5:]
            raise PreparationError(
                f"preparing {machine.name}: command {command.splitlines()[0][:80]!r} failed "
                f"with exit status {result.exit_status}: {' | '.join(output) or 'no output'}"
                + (
                    "; the agent and synthetic workloads are built there with gcc (or musl-gcc): "
                    "install gcc on that machine"
                    if "gcc" in " ".join(output) and "not found" in " ".join(output)
                    else ""
                )
            )
    machine.run(f"touch {shlex.quote(stamp)}", timeout_s=30)
    return prefix


# ------------------------------------------------------------------ signals


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived: unwind like Ctrl-C so every cleanup runs."""

    def __init__(self, signum: int):
        super().__init__(f"terminated by {signal.Signals(signum).name}")
        self.signum = signum


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Inside the block, SIGTERM and SIGHUP raise :class:`Terminated` (a KeyboardInterrupt).

    Without it they kill the process at once and nothing a persistent machine
    needs undone (DAMON, trace instance, agent, THP, swap) would be.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Terminated(signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


# ------------------------------------------------------------- this machine


class LocalMachine:
    """This machine, as a machine: commands through the local ``sh``.

    ``root``: kernel files are read and written below it (a fake tree for
    tests); processes still run on this machine.  DAMON here is only used
    when nothing else uses it (the controller's rules).
    """

    persistent = True
    control = None

    def __init__(
        self, root: Path | None = None, *, prefix: str | None = None, fs: LocalFs | None = None
    ) -> None:
        self.root = Path(root) if root is not None else None
        self.name = f"local:{self.root}" if self.root else "local"
        self.prefix = prefix
        # `fs`: a LocalFs with behaviour (the tests' fake kernel) for the same root
        self._fs = fs or (LocalFs(root=self.root) if self.root else LocalFs())

    def _sh(self, argv: list[str], timeout_s: float, stdin: str | None) -> CommandResult:
        try:
            proc = subprocess.run(
                argv,
                input=stdin,
                capture_output=True,
                text=True,
                timeout=timeout_s + KILL_AFTER_S + HOST_GRACE_S,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise GuestError(f"{self.name}: {argv[-1][:60]!r} did not finish in time") from exc
        return CommandResult(proc.returncode, proc.stdout, proc.stderr)

    def run(self, cmd: str, timeout_s: float) -> CommandResult:
        return self._sh(["sh", "-c", remote_command(cmd, timeout_s)], timeout_s, None)

    def run_script(self, script: str, timeout_s: float = 60.0) -> CommandResult:
        return self._sh(["sh", "-c", script_command(timeout_s)], timeout_s, script)

    @property
    def fs(self) -> LocalFs:
        return self._fs

    def put(self, local_path: Path | str, remote_path: str) -> None:
        target = Path(remote_path)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + f".part.{os.getpid()}")
        shutil.copy2(local_path, partial)
        partial.replace(target)

    def get(self, remote_path: str, local_path: Path | str) -> None:
        Path(local_path).parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copy2(remote_path, local_path)
        except OSError as exc:
            raise GuestError(f"{self.name}: cannot copy {remote_path}: {exc}") from exc

    def localize(self, text: str) -> str:
        return map_prefix(text, self.prefix)

    def kernel_path(self, path: str) -> str:
        return str(self._fs.host_path(path)) if self.root else path

    def facts(self) -> dict[str, Any]:
        return machine_facts(self)

    def is_alive(self) -> bool:
        return True

    def disconnect(self) -> None:
        """Nothing to close."""

    def __enter__(self) -> LocalMachine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.disconnect()


FACTS_SCRIPT = r"""
p() { printf '%s=%s\n' "$1" "$2"; }
p kernel_release "$(uname -r)"
p hostname "$(uname -n)"
p machine "$(uname -m)"
p cpu_model "$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n1)"
p nr_cpus "$(getconf _NPROCESSORS_ONLN 2>/dev/null || nproc)"
p memtotal_kib "$(sed -n 's/^MemTotal:[[:space:]]*\([0-9]*\).*/\1/p' /proc/meminfo)"
p virtualization "$(systemd-detect-virt 2>/dev/null || echo unknown)"
p os "$( (. /etc/os-release 2>/dev/null && printf '%s' "$PRETTY_NAME") || echo unknown)"
p boot_id "$(cat /proc/sys/kernel/random/boot_id 2>/dev/null)"
p uid "$(id -u)"
"""


def parse_facts(text: str) -> dict[str, str]:
    facts: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip():
            facts[key.strip()] = value.strip()
    return facts


def machine_facts(machine: Any) -> dict[str, Any]:
    """Kernel, host name, CPU, memory of a persistent machine, for provenance."""
    result = machine.run_script(FACTS_SCRIPT, timeout_s=30)
    if result.exit_status != 0:
        raise DamonEvalError(
            f"{machine.name}: reading machine facts failed: {result.stderr.strip()[-200:]}"
        )
    raw = parse_facts(result.stdout)

    def number(key: str) -> int | None:
        try:
            return int(raw.get(key, ""))
        except ValueError:
            return None

    return {
        "name": machine.name,
        "kernel_release": raw.get("kernel_release"),
        "hostname": raw.get("hostname"),
        "machine": raw.get("machine"),
        "cpu_model": raw.get("cpu_model") or None,
        "nr_cpus": number("nr_cpus"),
        "memtotal_kib": number("memtotal_kib"),
        "virtualization": raw.get("virtualization"),
        "os": raw.get("os"),
        "boot_id": raw.get("boot_id"),
        "user_id": number("uid"),
        "accel": NONE_ACCEL,
        "clock_note": "durations: CLOCK_MONOTONIC of that machine",
    }
