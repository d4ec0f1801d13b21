"""Helpers for tests that build and run the real de-agent / accgen on this host."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

NO_COMPILER = "neither musl-gcc nor gcc is installed on this host: the C agent cannot be built"


def need_compiler() -> None:
    if not (shutil.which("musl-gcc") or shutil.which("gcc")):
        pytest.skip(NO_COMPILER)


def wait_until(predicate: Callable[[], object], timeout_s: float = 10, what: str = "") -> object:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what or predicate}")


def proc_state(pid: int) -> str | None:
    """The state letter of /proc/<pid>/stat (``t`` = stopped by a tracer), None if gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2]


def proc_comm(pid: int) -> str:
    return Path(f"/proc/{pid}/comm").read_text().strip()


def alive(pid: int) -> bool:
    state = proc_state(pid)
    return state is not None and state not in ("Z", "X")


def read_pid_file(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text else None


def start_agent(agent: Path, args: list[str], **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [str(agent), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def finish(proc: subprocess.Popen, timeout_s: float = 30) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"agent did not finish in {timeout_s} s: {err}") from None
    return proc.returncode, out, err


def events(out_dir: Path) -> list[tuple[str, str]]:
    """(direction, text) pairs of events.log; direction is '>', '<' or '#'."""
    pairs = []
    for line in (out_dir / "events.log").read_text().splitlines():
        _, direction, text = line.split(" ", 2)
        pairs.append((direction, text))
    return pairs


def sent(out_dir: Path) -> list[str]:
    return [text for direction, text in events(out_dir) if direction == ">"]


def signal_agent(proc: subprocess.Popen, signum: int) -> None:
    os.kill(proc.pid, signum)
