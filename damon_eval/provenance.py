"""Facts recorded with every result: harness revision and host."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

from damon_eval import __version__
from damon_eval.paths import repo_root


def git_revision(root: Path | None = None) -> str:
    """``<sha>`` or ``<sha>-dirty``; ``unknown`` outside a git checkout."""
    root = root or repo_root()
    if root is None:
        return "unknown"
    try:
        sha = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{sha}-dirty" if dirty else sha


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def host_facts() -> dict:
    """CPU model, governor, load and kernel of the machine running the harness."""
    cpu_model = None
    cpuinfo = _read("/proc/cpuinfo") or ""
    for line in cpuinfo.splitlines():
        if line.startswith("model name"):
            cpu_model = line.split(":", 1)[1].strip()
            break
    load = os.getloadavg() if hasattr(os, "getloadavg") else (None, None, None)
    return {
        "hostname": platform.node(),
        "kernel": platform.release(),
        "cpu_model": cpu_model,
        "nr_cpus": os.cpu_count(),
        "governor": _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        "thp_enabled": _read("/sys/kernel/mm/transparent_hugepage/enabled"),
        "loadavg_1_5_15": list(load),
        "python": platform.python_version(),
        "harness_version": __version__,
        "harness_revision": git_revision(),
    }
