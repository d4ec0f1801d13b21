"""Run a workload's guest plans on this machine, with guest paths mapped into a directory.

For tests and calibration only: it shows that the prepare script and the run
command work as written, without a guest.  The guest directories
(``/opt/damon-eval``, ``/var/tmp/damon-eval``) become ``<root>/opt`` and
``<root>/var``; uploaded text files get the same mapping.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from damon_eval.paths import GUEST_PREFIX
from damon_eval.workloads.base import RunParams, Workload, WorkloadContext

GUEST_VAR_PREFIX = "/var/tmp/damon-eval"
TEXT_SUFFIXES = (".sh", ".cfg", ".sql", ".py", ".c")


def localize(text: str, root: Path) -> str:
    return text.replace(GUEST_PREFIX, f"{root}/opt").replace(GUEST_VAR_PREFIX, f"{root}/var")


def prepare_locally(
    workload: Workload, context: WorkloadContext, params: RunParams, root: Path
) -> subprocess.CompletedProcess:
    """Copy the uploads and run the prepare script; returns the finished process."""
    plan = workload.prepare(context, params)
    for upload in plan.uploads:
        dest = Path(localize(upload.dest, root))
        dest.parent.mkdir(parents=True, exist_ok=True)
        data = upload.source.read_bytes()
        if upload.source.suffix in TEXT_SUFFIXES:
            data = localize(data.decode(), root).encode()
        dest.write_bytes(data)
        dest.chmod(upload.source.stat().st_mode)
    script = localize(plan.script(), root)
    return subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=False)


def local_agent_argv(
    workload: Workload, context: WorkloadContext, params: RunParams, root: Path, **agent_options
) -> list[str]:
    """The ``de-agent run`` argv of the workload, paths mapped under ``root``."""
    invocation = workload.agent_invocation(context, params, **agent_options)
    return [localize(arg, root) for arg in invocation.argv()]
