"""The workload registry: ``synthetic/*``, ``parsec3/*``, ``splash2x/*``, ``debian/*``.

>>> from damon_eval.workloads import get_workload, WorkloadContext, RunParams
>>> w = get_workload("synthetic/zigzag")
>>> w.run_plan(WorkloadContext(), RunParams(out_dir="/run")).hold
'exec'

Every workload is an id ``suite/name`` with ``available(context)``,
``prepare(context, params)``, ``run_plan(context, params)`` and
``version(context)``; see :mod:`damon_eval.workloads.base`.
"""

from __future__ import annotations

import difflib
from functools import cache

from damon_eval.errors import ConfigError
from damon_eval.workloads.base import (
    ParsecSource,
    PreparePlan,
    RunParams,
    RunPlan,
    Upload,
    Workload,
    WorkloadContext,
    WorkloadUnavailable,
)
from damon_eval.workloads.debian import debian_workloads
from damon_eval.workloads.parsec import PARSEC_HOW_TO, parsec_workloads
from damon_eval.workloads.synthetic import synthetic_workloads

__all__ = [
    "REQUIRED_GUEST_PACKAGES",
    "SUITES",
    "ParsecSource",
    "PreparePlan",
    "RunParams",
    "RunPlan",
    "Upload",
    "Workload",
    "WorkloadContext",
    "WorkloadUnavailable",
    "all_workloads",
    "get_workload",
    "require_available",
]

SUITES: tuple[str, ...] = ("synthetic", "parsec3", "splash2x", "debian")

# Debian packages the guest image needs for the agent, accgen and debian/*.
# musl-tools is optional (a smaller agent); redis-server's own service must be
# disabled in the image so that no idle redis runs beside the measured one.
REQUIRED_GUEST_PACKAGES: tuple[str, ...] = (
    "gcc",
    "libc6-dev",
    "musl-tools",
    "python3",
    "x264",
    "libvips-tools",
    "redis-server",
    "redis-tools",
    "zstd",
    "sqlite3",
)


@cache
def _registry() -> dict[str, Workload]:
    workloads = [*synthetic_workloads(), *parsec_workloads(), *debian_workloads()]
    return {w.id: w for w in workloads}


def all_workloads() -> list[Workload]:
    """Every workload, suites in :data:`SUITES` order."""
    return sorted(_registry().values(), key=lambda w: (SUITES.index(w.suite), w.name))


def get_workload(workload_id: str) -> Workload:
    """The workload ``suite/name``; an unknown id names the close matches."""
    registry = _registry()
    if workload_id in registry:
        return registry[workload_id]
    suite = workload_id.split("/", 1)[0]
    if suite not in SUITES:
        raise ConfigError(
            f"unknown workload {workload_id!r}: suite {suite!r} is not one of {', '.join(SUITES)}"
        )
    close = difflib.get_close_matches(workload_id, list(registry), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    names = ", ".join(w.name for w in all_workloads() if w.suite == suite)
    raise ConfigError(f"unknown workload {workload_id!r}{hint} ({suite} has: {names})")


def require_available(workload: Workload, context: WorkloadContext) -> None:
    """Raise :class:`WorkloadUnavailable` (saying how to fix it) unless it can run."""
    ok, reason = workload.available(context)
    if ok:
        return
    message = f"{workload.id} is not available: {reason}"
    if workload.suite in ("parsec3", "splash2x"):
        message += f". To provide PARSEC, {PARSEC_HOW_TO}"
    raise WorkloadUnavailable(message)
