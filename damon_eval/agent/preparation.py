"""What a machine is given before the agent runs there: one :func:`agent_preparation`.

The agent's source and its build, then each workload's files and set-up
script (:class:`damon_eval.workloads.base.PreparePlan`), then ``then``
commands.  Measured runs (a campaign's workloads) and ``damon-eval record``
(the agent alone, or one workload) both use it, so a guest's saved state
made for one is reused by the other when the digest matches.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol

from damon_eval.agent.build import (
    AGENT_SOURCE_PATH,
    GUEST_AGENT_PATH,
    GUEST_AGENT_SOURCE_PATH,
    guest_build_script,
)
from damon_eval.machines.preparation import Preparation

UPLOAD_DIR = "/var/tmp/damon-eval/upload"  # archives wait here until they are unpacked
AGENT_BUILD_TIMEOUT_S = 900.0
WORKLOAD_PREPARATION_TIMEOUT_S = 7200.0  # PARSEC builds from source


class WorkloadUpload(Protocol):
    source: Path
    dest: str
    extract: bool


class WorkloadFiles(Protocol):
    """What a workload needs on the machine (a ``PreparePlan``)."""

    @property
    def uploads(self) -> Sequence[WorkloadUpload]: ...

    def script(self) -> str: ...


def agent_preparation(
    workloads: Iterable[WorkloadFiles] = (), *, then: Sequence[str] = ()
) -> Preparation:
    """The agent built from source, each workload's files uploaded and its script run,
    then ``then`` (in order).  An archive to extract is uploaded once and unpacked;
    a file two workloads share (PARSEC's one archive) is uploaded once."""
    uploads: list[tuple[Path, str]] = [(AGENT_SOURCE_PATH, GUEST_AGENT_SOURCE_PATH)]
    commands = [guest_build_script(GUEST_AGENT_SOURCE_PATH, GUEST_AGENT_PATH)]
    nr_workloads = 0
    for plan in workloads:
        nr_workloads += 1
        for upload in plan.uploads:
            if upload.extract:
                archive = f"{UPLOAD_DIR}/{upload.source.name}"
                uploads.append((upload.source, archive))
                commands.append(
                    f"mkdir -p {shlex.quote(upload.dest)} && "
                    f"tar -xf {shlex.quote(archive)} -C {shlex.quote(upload.dest)} && "
                    f"rm -f {shlex.quote(archive)}"
                )
            elif (upload.source, upload.dest) not in uploads:
                uploads.append((upload.source, upload.dest))
        commands.append("sh -s <<'DAMON_EVAL_PREPARE'\n" + plan.script() + "DAMON_EVAL_PREPARE")
    commands.extend(then)
    timeout_s = WORKLOAD_PREPARATION_TIMEOUT_S if nr_workloads else AGENT_BUILD_TIMEOUT_S
    return Preparation(uploads=tuple(uploads), commands=tuple(commands), timeout_s=timeout_s)
