"""Which DAMON interface a machine has: the back end to drive it with.

:func:`open_backend` picks sysfs or debugfs from one read-only batch
(:mod:`damon_eval.damon.probe`) that also reads what a start needs, so a start
costs three round trips on a remote machine: probe, staging with read-back,
``on`` with its check.
"""

from __future__ import annotations

from collections.abc import Sequence

from damon_eval.damon.backend import DamonBackend
from damon_eval.damon.debugfs import DEBUGFS_DAMON, DebugfsBackend
from damon_eval.damon.errors import DamonMissingError
from damon_eval.damon.probe import TargetProbe, take_probe
from damon_eval.damon.sysfs import SysfsBackend
from damon_eval.damon.sysfs_layout import SYSFS_ADMIN
from damon_eval.fs import FileSystem

__all__ = ["open_backend", "probe_machine"]


def probe_machine(
    fs: FileSystem,
    *,
    reads: Sequence[str] = (),
    sysfs_admin: str = SYSFS_ADMIN,
    debugfs_damon: str = DEBUGFS_DAMON,
) -> tuple[DamonBackend, TargetProbe]:
    """The back end for the interface the target has (sysfs preferred) and a probe
    holding what its start needs plus ``reads``, in one round trip."""
    candidates = _candidates(fs, sysfs_admin, debugfs_damon)
    probe = take_probe(fs, [op for c in candidates for op in c.probe_ops()], reads=reads)
    return _pick(fs, candidates, probe, sysfs_admin, debugfs_damon), probe


def open_backend(
    fs: FileSystem,
    *,
    sysfs_admin: str = SYSFS_ADMIN,
    debugfs_damon: str = DEBUGFS_DAMON,
    probe: TargetProbe | None = None,
) -> DamonBackend:
    """The back end for the interface the target has (sysfs preferred): from
    ``probe`` when it was taken with :func:`probe_machine`, else in one round trip."""
    if probe is None:
        return probe_machine(fs, sysfs_admin=sysfs_admin, debugfs_damon=debugfs_damon)[0]
    candidates = _candidates(fs, sysfs_admin, debugfs_damon)
    return _pick(fs, candidates, probe, sysfs_admin, debugfs_damon)


def _candidates(fs: FileSystem, sysfs_admin: str, debugfs_damon: str) -> list[DamonBackend]:
    return [SysfsBackend(fs, admin=sysfs_admin), DebugfsBackend(fs, damon_dir=debugfs_damon)]


def _pick(
    fs: FileSystem,
    candidates: list[DamonBackend],
    probe: TargetProbe,
    sysfs_admin: str,
    debugfs_damon: str,
) -> DamonBackend:
    for backend in candidates:
        if backend.present_in(probe):
            backend.adopt(probe)
            return backend
    raise DamonMissingError(
        f"DAMON not found on {fs.description}: no {sysfs_admin} (needs CONFIG_DAMON_SYSFS, "
        f"Linux 5.18+) and no {debugfs_damon} (needs CONFIG_DAMON_DBGFS and a mounted "
        "debugfs: mount -t debugfs none /sys/kernel/debug)"
    )
