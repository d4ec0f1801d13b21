"""This machine as a :class:`~damon_eval.machines.protocol.Machine`, and the facts
a result records about a persistent machine."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from damon_eval.errors import DamonEvalError, GuestError
from damon_eval.fs import CommandResult, LocalFs
from damon_eval.machines.preparation import map_prefix
from damon_eval.machines.protocol import Machine
from damon_eval.machines.ssh_transport import (
    HOST_GRACE_S,
    KILL_AFTER_S,
    remote_command,
    script_command,
)

NONE_ACCEL = "none (bare metal or foreign VM)"


class LocalMachine:
    """This machine, as a machine: commands through the local ``sh``.

    ``root``: kernel files are read and written below it (a fake tree for
    tests); processes still run on this machine.  DAMON here is only used
    when nothing else uses it (the controller's rules).
    """

    name: str
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


def machine_facts(machine: Machine) -> dict[str, Any]:
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
