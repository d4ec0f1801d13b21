"""One interface over the kernel's two DAMON control interfaces.

* :class:`~damon_eval.damon.sysfs.SysfsBackend`: mainline ``/sys/kernel/mm/damon/admin``
  (5.18+), and
* :class:`~damon_eval.damon.debugfs.DebugfsBackend`: the legacy ``<debugfs>/damon/``
  of the seed's kernels and 5.15-6.8.

:func:`~damon_eval.damon.detect.open_backend` picks the one the target machine has.
Back ends do the kernel I/O only;
ownership, signals and cleanup are the controller's job
(:mod:`damon_eval.damon.controller`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from damon_eval.damon.errors import DamonError, translate_fs_error
from damon_eval.damon.model import Kdamond
from damon_eval.damon.probe import BOOT_ID_PATH, TargetProbe, take_probe
from damon_eval.errors import FsError
from damon_eval.fs import FileSystem, Op, ReadIfExists


@dataclass(frozen=True, slots=True)
class Features:
    """What the target kernel's DAMON supports.

    ``None`` means unknown: sysfs only shows context and scheme files while a
    kdamond directory with a context (and a scheme) exists, and the read-only
    probe never creates one.
    """

    interface: str
    root: str
    kernel_release: str | None
    operations: tuple[str, ...] | None
    scheme_actions: tuple[str, ...] | None
    state_commands: tuple[str, ...] | None
    tracefs: str | None
    tracepoints: tuple[str, ...]
    capabilities: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        def listed(value: tuple[str, ...] | None) -> list[str] | None:
            return None if value is None else list(value)

        return {
            "interface": self.interface,
            "root": self.root,
            "kernel_release": self.kernel_release,
            "operations": listed(self.operations),
            "scheme_actions": listed(self.scheme_actions),
            "state_commands": listed(self.state_commands),
            "tracefs": self.tracefs,
            "tracepoints": list(self.tracepoints),
            "capabilities": list(self.capabilities),
            "notes": list(self.notes),
        }


@dataclass(frozen=True, slots=True)
class KdamondStatus:
    """One kdamond as the kernel shows it."""

    index: int
    state: str
    pid: int | None
    operations: str | None = None
    nr_targets: int | None = None
    nr_schemes: int | None = None
    ours: bool = False

    @property
    def running(self) -> bool:
        return self.state == "on"

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "state": self.state,
            "pid": self.pid,
            "operations": self.operations,
            "nr_targets": self.nr_targets,
            "nr_schemes": self.nr_schemes,
            "ours": self.ours,
        }


@dataclass(frozen=True, slots=True)
class KdamondHandle:
    """A kdamond the harness started: enough to find it again and to prove it is ours."""

    interface: str
    index: int
    pid: int
    boot_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "interface": self.interface,
            "index": self.index,
            "pid": self.pid,
            "boot_id": self.boot_id,
        }


@dataclass(frozen=True, slots=True)
class SchemeStats:
    """A scheme's cumulative statistics (``stats/*`` on sysfs)."""

    nr_tried: int
    sz_tried: int
    nr_applied: int
    sz_applied: int
    qt_exceeds: int
    extra: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "nr_tried": self.nr_tried,
            "sz_tried": self.sz_tried,
            "nr_applied": self.nr_applied,
            "sz_applied": self.sz_applied,
            "qt_exceeds": self.qt_exceeds,
            **self.extra,
        }


@dataclass(frozen=True, slots=True)
class TriedRegion:
    """A region a scheme was tried on in the last apply interval."""

    start: int
    end: int
    nr_accesses: int
    age: int
    sz_filter_passed: int | None = None

    @property
    def size(self) -> int:
        return self.end - self.start

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "end": self.end,
            "nr_accesses": self.nr_accesses,
            "age": self.age,
            "sz_filter_passed": self.sz_filter_passed,
        }


@dataclass(frozen=True, slots=True)
class TriedRegions:
    """The tried regions of one scheme, and the kernel's total when it reports one."""

    scheme_index: int
    regions: tuple[TriedRegion, ...]
    total_bytes: int | None = None

    @property
    def size(self) -> int:
        return sum(r.size for r in self.regions)

    def to_dict(self) -> dict[str, Any]:
        return {
            "scheme_index": self.scheme_index,
            "total_bytes": self.total_bytes,
            "regions": [r.to_dict() for r in self.regions],
        }


@dataclass(frozen=True, slots=True)
class DebugfsRecord:
    """The seed kernels' in-kernel recording (debugfs ``record``: ``<rbuf_len> <path>``)."""

    path: str
    rbuf_len: int = 1024 * 1024


class DamonBackend(ABC):
    """The operations the controller needs from a kernel interface."""

    interface: str = "abstract"

    def __init__(self, fs: FileSystem):
        self.fs = fs

    @abstractmethod
    def features(self, *, refresh: bool = False) -> Features:
        """What the kernel supports (read-only)."""

    def probe_features(self) -> Features:
        """Like :meth:`features`, but may create (and then remove) an idle scratch kdamond
        directory to see what the read-only probe cannot.  Writes DAMON's files; for
        machines damon-eval owns (guests).  Default: the read-only probe, refreshed."""
        return self.features(refresh=True)

    @abstractmethod
    def kdamonds(self) -> list[KdamondStatus]:
        """Every kdamond the interface shows (read-only)."""

    @abstractmethod
    def start(
        self,
        kdamond: Kdamond,
        *,
        record: DebugfsRecord | None = None,
        probe: TargetProbe | None = None,
    ) -> KdamondHandle:
        """Stage ``kdamond`` in a new kdamond and turn it on.

        Refuses with :class:`DamonBusyError` when any kdamond is running: it
        cannot belong to this call, and sysfs would have to destroy it.  The
        check uses ``probe`` when it is fresh and from this file system, else a
        new :meth:`probe`.
        """

    @abstractmethod
    def probe_ops(self) -> list[Op]:
        """Read-only operations (never failing on a missing file) that tell whether
        this interface exists and what a start must check; see :meth:`present_in`."""

    @abstractmethod
    def present_in(self, probe: TargetProbe) -> bool:
        """Whether ``probe`` (including :meth:`probe_ops`) found this interface."""

    def adopt(self, probe: TargetProbe) -> None:  # noqa: B027 - optional hook
        """Keep what ``probe`` says about the interface's files (default: nothing)."""

    def probe(self, *, reads: Sequence[str] = ()) -> TargetProbe:
        """One round trip: this interface's state, boot id, release, tracefs and ``reads``."""
        probe = take_probe(self.fs, self.probe_ops(), reads=reads)
        self.adopt(probe)
        return probe

    def _fresh_probe(self, probe: TargetProbe | None) -> TargetProbe:
        if probe is not None and probe.usable_for(self.fs) and self.present_in(probe):
            return probe
        return self.probe()

    @abstractmethod
    def commit(self, handle: KdamondHandle, kdamond: Kdamond) -> None:
        """Apply new parameters to a running kdamond."""

    @abstractmethod
    def scheme_stats(self, handle: KdamondHandle) -> tuple[SchemeStats, ...]:
        """Fresh statistics of every scheme, in order."""

    @abstractmethod
    def tried_regions(
        self, handle: KdamondHandle, scheme_indexes: Sequence[int] | None = None
    ) -> tuple[TriedRegions, ...]:
        """Fresh tried regions of the given schemes (all by default)."""

    @abstractmethod
    def state_of(self, handle: KdamondHandle) -> tuple[str, int | None]:
        """``(state, pid)`` of the kdamond slot the handle names."""

    @abstractmethod
    def turn_off(self, handle: KdamondHandle) -> bool:
        """Turn the kdamond off if it is still the one the handle names and runs.

        Returns whether an ``off`` was written.
        """

    def release(self, handle: KdamondHandle) -> None:  # noqa: B027 - optional hook
        """Undo what :meth:`start` created once the kdamond is off (default: nothing)."""

    def stop(self, handle: KdamondHandle) -> bool:
        """:meth:`turn_off` then :meth:`release`; returns whether ``off`` was written.
        Back ends override it to take fewer round trips."""
        wrote_off = self.turn_off(handle)
        self.release(handle)
        return wrote_off

    def is_running(self, handle: KdamondHandle) -> bool:
        """Whether the handle's kdamond still runs (same pid, state on)."""
        state, pid = self.state_of(handle)
        return state == "on" and pid == handle.pid

    # Shared helpers --------------------------------------------------------

    def run(self, ops: Sequence[Op], doing: str) -> list[Any]:
        """Execute ``ops`` and turn file-system errors into DAMON errors that say what failed."""
        try:
            return self.fs.execute(ops)
        except FsError as exc:
            raise translate_fs_error(exc, doing) from exc

    def boot_id(self) -> str:
        """The target's boot id (empty when it has none, e.g. a fake tree)."""
        (text,) = self.run([ReadIfExists(BOOT_ID_PATH)], f"reading {BOOT_ID_PATH}")
        return (text or "").strip()


def parse_int(text: str, what: str) -> int:
    """An integer the kernel printed, or a :class:`DamonError` naming the file."""
    try:
        return int(text.strip())
    except ValueError:
        raise DamonError(f"unexpected content {text!r} in {what}; expected an integer") from None
