"""The embedded DAMON controller: start what we own, always stop it, never touch the rest.

Rules it enforces:

* It only uses kdamonds it created.  On sysfs a new kdamond needs a write to
  ``nr_kdamonds``, which the kernel refuses (EBUSY) while any kdamond runs and
  which recreates every kdamond directory otherwise; so when any kdamond runs,
  the start is refused with :class:`DamonBusyError` naming it, before any write.
  On debugfs a running monitor (``monitor_on`` = on) is refused the same way.
* It turns off what it started and nothing else: the handle records the
  kdamond's pid (and the target's boot id); ``off`` is written only while that
  pid still runs in the slot.
* :meth:`DamonController.session` is a context manager that turns DAMON off on
  normal exit, on exceptions, and on SIGINT/SIGTERM/SIGHUP (its handlers are
  installed for the session only and the previous ones restored).  Signals
  that arrive while the kdamond is being started or stopped are held back
  until the handle exists or ``off`` has been written.
* Ownership is also recorded on disk (``owned-kdamonds.json`` in the cache
  directory) so ``damon-eval damon status`` in another process can say which
  kdamonds are damon-eval's.

Cost on a remote machine (one round trip per batch): a start takes three
(:meth:`DamonController.probe`, which also detects the interface; staging with
read-back; ``on`` with its check), a stop two.  A caller that needs other
files before the start (``/proc/iomem`` for a paddr target, tracefs) takes the
probe itself with ``reads`` and passes it to :meth:`~DamonController.start`.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

from damon_eval.atomic import atomic_write_json
from damon_eval.damon.backend import (
    DamonBackend,
    DebugfsRecord,
    Features,
    KdamondHandle,
    KdamondStatus,
    SchemeStats,
    TriedRegions,
)
from damon_eval.damon.detect import open_backend, probe_machine
from damon_eval.damon.errors import DamonBusyError, DamonError
from damon_eval.damon.model import Context, Kdamond, MonitoringAttrs, Target
from damon_eval.damon.probe import TargetProbe
from damon_eval.damon.scheme_spec import SchemeSpec
from damon_eval.damon.schemes import ResolvedScheme, resolve_schemes
from damon_eval.fs import CommandResult, FileSystem
from damon_eval.paths import cache_dir

log = logging.getLogger(__name__)

OWNERSHIP_FILE = "owned-kdamonds.json"
HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class SessionInterrupted(KeyboardInterrupt):
    """A signal ended a DAMON session (after DAMON was turned off).

    A :class:`KeyboardInterrupt` so that ``except Exception`` does not swallow it
    and the CLI reports an interruption.
    """

    def __init__(self, signum: int):
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum


def build_kdamond(
    operations: str,
    targets: Sequence[Target],
    *,
    attrs: MonitoringAttrs | None = None,
    schemes: Sequence[SchemeSpec] = (),
) -> tuple[Kdamond, tuple[ResolvedScheme, ...]]:
    """A one-context kdamond plus its schemes resolved for ``attrs`` (both forms kept)."""
    attrs = attrs or MonitoringAttrs()
    resolved = resolve_schemes(schemes, attrs)
    context = Context(
        operations=operations,
        attrs=attrs,
        targets=tuple(targets),
        schemes=tuple(r.raw for r in resolved),
    )
    return Kdamond(contexts=(context,)), resolved


class OwnershipRegistry:
    """Which kdamonds damon-eval started, per target, kept in a small JSON file."""

    def __init__(self, path: Path | None = None):
        self.path = Path(path) if path is not None else cache_dir() / OWNERSHIP_FILE

    def entries(self) -> list[dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable ownership file %s: %s", self.path, exc)
            return []
        return [e for e in data.get("kdamonds", []) if isinstance(e, dict)]

    def _save(self, entries: list[dict[str, Any]]) -> None:
        try:
            atomic_write_json(self.path, {"kdamonds": entries})
        except OSError as exc:
            log.warning("cannot record kdamond ownership in %s: %s", self.path, exc)

    def add(self, target: str, handle: KdamondHandle) -> None:
        entries = [e for e in self.entries() if not _same_kdamond(e, target, handle)]
        entries.append(
            {
                "target": target,
                **handle.to_dict(),
                "owner_pid": os.getpid(),
                "started_unix": round(time.time(), 3),
            }
        )
        self._save(entries)

    def remove(self, target: str, handle: KdamondHandle) -> None:
        entries = self.entries()
        kept = [e for e in entries if not _same_kdamond(e, target, handle)]
        if len(kept) != len(entries):
            self._save(kept)

    def owns(self, target: str, status: KdamondStatus, interface: str, boot_id: str) -> bool:
        """Whether ``status`` is a kdamond damon-eval started on ``target``."""
        if not status.running:
            return False
        for entry in self.entries():
            if (
                entry.get("target") == target
                and entry.get("interface") == interface
                and entry.get("index") == status.index
                and (entry.get("pid") in (status.pid, 0))
                and (not boot_id or not entry.get("boot_id") or entry.get("boot_id") == boot_id)
            ):
                return True
        return False


def _same_kdamond(entry: dict[str, Any], target: str, handle: KdamondHandle) -> bool:
    return (
        entry.get("target") == target
        and entry.get("interface") == handle.interface
        and entry.get("index") == handle.index
        and entry.get("pid") == handle.pid
    )


class _SignalGuard:
    """Session-scoped handlers turning SIGINT/SIGTERM/SIGHUP into :class:`SessionInterrupted`."""

    def __init__(self) -> None:
        self._previous: dict[int, Any] = {}
        self._deferring = False
        self.pending: int | None = None

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            log.debug("not in the main thread: DAMON session without signal handlers")
            return
        for signum in HANDLED_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self._deferring:
            self.pending = self.pending or signum
            return
        raise SessionInterrupted(signum)

    @contextmanager
    def deferred(self, *, reraise: bool = True) -> Iterator[None]:
        """Hold signals back inside the block; re-raise a held one at its end."""
        self._deferring = True
        try:
            yield
        finally:
            self._deferring = False
        if reraise and self.pending is not None:
            raise SessionInterrupted(self.pending)

    def restore(self) -> None:
        self._deferring = True
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()


class DamonSession:
    """A running kdamond that damon-eval started; use :meth:`stop` (or the controller's
    :meth:`~DamonController.session` context manager) to end it."""

    def __init__(
        self,
        controller: DamonController,
        handle: KdamondHandle,
        kdamond: Kdamond,
        schemes: tuple[ResolvedScheme, ...] = (),
    ):
        self.controller = controller
        self.handle = handle
        self.kdamond = kdamond
        self.schemes = schemes
        self.stopped = False

    @property
    def backend(self) -> DamonBackend:
        return self.controller.backend

    @property
    def pid(self) -> int:
        """The kdamond's pid (0 when the kernel does not show it: seed-era debugfs)."""
        return self.handle.pid

    def is_running(self) -> bool:
        return not self.stopped and self.backend.is_running(self.handle)

    def commit(self, kdamond: Kdamond, schemes: tuple[ResolvedScheme, ...] = ()) -> None:
        """Apply new parameters to the running kdamond (sysfs ``commit``)."""
        self.backend.commit(self.handle, kdamond)
        self.kdamond = kdamond
        self.schemes = schemes

    def scheme_stats(self) -> tuple[SchemeStats, ...]:
        return self.backend.scheme_stats(self.handle)

    def tried_regions(
        self, scheme_indexes: Sequence[int] | None = None
    ) -> tuple[TriedRegions, ...]:
        return self.backend.tried_regions(self.handle, scheme_indexes)

    def stop(self) -> bool:
        """Turn the kdamond off if it still runs as ours; idempotent.  Returns whether
        ``off`` was written (False when it had stopped by itself, e.g. its target exited)."""
        if self.stopped:
            return False
        wrote_off = self.backend.stop(self.handle)
        self.stopped = True
        self.controller.registry.remove(self.controller.fs.description, self.handle)
        return wrote_off

    def to_dict(self) -> dict[str, Any]:
        """What ran: the handle, the raw parameters and each scheme's human and raw form."""
        return {
            "handle": self.handle.to_dict(),
            "kdamond": self.kdamond.to_dict(),
            "schemes": [s.to_dict() for s in self.schemes],
        }


class DamonController:
    """DAMON on one target machine (reached through ``fs``)."""

    def __init__(
        self,
        fs: FileSystem,
        *,
        backend: DamonBackend | None = None,
        registry: OwnershipRegistry | None = None,
    ):
        self.fs = fs
        self._backend = backend
        self.registry = registry if registry is not None else OwnershipRegistry()

    @property
    def backend(self) -> DamonBackend:
        """The kernel interface (detected on first use; DamonMissingError if none)."""
        if self._backend is None:
            self._backend = open_backend(self.fs)
        return self._backend

    def features(self, *, probe: bool = False) -> Features:
        """What the kernel's DAMON supports.  Read-only unless ``probe``: then, when no
        kdamond exists, an idle scratch kdamond directory is created and removed to
        see operations, scheme actions and state commands (see ``probe_features``)."""
        return self.backend.probe_features() if probe else self.backend.features()

    def probe(self, *, reads: Sequence[str] = ()) -> TargetProbe:
        """One read-only round trip: the DAMON interface (detected if not yet known),
        its kdamonds' states, boot id, release, tracefs, and the files in ``reads``
        (:meth:`TargetProbe.file`).  Pass it to :meth:`start` or :meth:`session` soon:
        an older probe (:data:`~damon_eval.damon.probe.MAX_PROBE_AGE_S`) is not used."""
        if self._backend is None:
            self._backend, probe = probe_machine(self.fs, reads=reads)
            return probe
        return self._backend.probe(reads=reads)

    def status(self) -> list[KdamondStatus]:
        """Every kdamond, with ``ours`` telling whether damon-eval started it."""
        backend = self.backend
        statuses = backend.kdamonds()
        boot_id = backend.boot_id()
        target = self.fs.description
        result = []
        for status in statuses:
            ours = self.registry.owns(target, status, backend.interface, boot_id)
            result.append(
                KdamondStatus(
                    index=status.index,
                    state=status.state,
                    pid=status.pid,
                    operations=status.operations,
                    nr_targets=status.nr_targets,
                    nr_schemes=status.nr_schemes,
                    ours=ours,
                )
            )
        return result

    def start(
        self,
        kdamond: Kdamond,
        *,
        schemes: tuple[ResolvedScheme, ...] = (),
        record: DebugfsRecord | None = None,
        probe: TargetProbe | None = None,
    ) -> DamonSession:
        """Start ``kdamond``; the caller must stop the session (prefer :meth:`session`).

        Refuses (nothing written) when any kdamond runs, judged by ``probe`` if it
        is fresh, else by a new probe."""
        if probe is None or not probe.usable_for(self.fs):
            probe = self.probe()
        handle = self.backend.start(kdamond, record=record, probe=probe)
        self.registry.add(self.fs.description, handle)
        log.info(
            "started kdamond %d (pid %d) on %s via %s",
            handle.index,
            handle.pid,
            self.fs.description,
            handle.interface,
        )
        return DamonSession(self, handle, kdamond, schemes)

    @contextmanager
    def session(
        self,
        kdamond: Kdamond,
        *,
        schemes: tuple[ResolvedScheme, ...] = (),
        record: DebugfsRecord | None = None,
        handle_signals: bool = True,
        probe: TargetProbe | None = None,
    ) -> Iterator[DamonSession]:
        """Run ``kdamond`` for the duration of the block, and always turn it off."""
        guard = _SignalGuard()
        if handle_signals:
            guard.install()
        session: DamonSession | None = None
        try:
            with guard.deferred():
                session = self.start(kdamond, schemes=schemes, record=record, probe=probe)
            yield session
        except BaseException:
            self._cleanup(session, guard)
            raise
        self._cleanup(session, guard)
        if guard.pending is not None:
            raise SessionInterrupted(guard.pending)

    def _cleanup(self, session: DamonSession | None, guard: _SignalGuard) -> None:
        try:
            with guard.deferred(reraise=False):
                if session is not None:
                    try:
                        session.stop()
                    except DamonError:
                        log.error(
                            "could not turn off kdamond %d (pid %d) on %s",
                            session.handle.index,
                            session.handle.pid,
                            self.fs.description,
                        )
                        raise
        finally:
            guard.restore()


# ------------------------------------------- DAMON used by someone else


class CommandRunner(Protocol):
    """What the checks below need of a machine (any ``Machine`` has it)."""

    name: str

    def run(self, cmd: str, timeout_s: float) -> CommandResult: ...


def foreign_kdamond_threads(
    machine: CommandRunner, ours: set[int], *, proc_dir: str = "/proc"
) -> list[tuple[int, str]]:
    """``(pid, comm)`` of kdamond threads not in ``ours``: DAMON busy with something else.

    Catches kdamonds that the sysfs interface does not list, such as those of
    DAMON_RECLAIM or DAMON_LRU_SORT.  ``proc_dir``: ``/proc`` as processes on
    the machine see it (a fake tree's for ``--root``).
    """
    proc = shlex.quote(proc_dir)
    result = machine.run(
        f"for d in {proc}/[0-9]*; do read -r c < $d/comm 2>/dev/null || continue; "
        'case "$c" in kdamond*) echo "${d##*/} $c";; esac; done; true',
        timeout_s=60,
    )
    found = []
    for line in result.stdout.splitlines():
        pid, _, comm = line.strip().partition(" ")
        if pid.isdigit() and int(pid) not in ours:
            found.append((int(pid), comm))
    return found


def refuse_if_damon_busy(
    machine: CommandRunner, controller: DamonController, *, proc_dir: str = "/proc"
) -> None:
    """Refuse, naming it, when any kdamond runs that damon-eval did not start: one in
    the interface's status, or a kdamond thread it does not list (see above)."""
    statuses = controller.status()
    foreign = [s for s in statuses if s.running and not s.ours]
    if foreign:
        names = ", ".join(
            f"kdamond {s.index} (pid {s.pid}, {s.operations or 'unknown operations'})"
            for s in foreign
        )
        raise DamonBusyError(
            f"DAMON on {machine.name} is busy: {names} runs and was not started by damon-eval; "
            "damon-eval never touches other kdamonds. Stop it first (or use another machine)"
        )
    ours = {s.pid for s in statuses if s.running and s.pid}
    threads = foreign_kdamond_threads(machine, ours, proc_dir=proc_dir)
    if threads:
        names = ", ".join(f"{comm} (pid {pid})" for pid, comm in threads)
        raise DamonBusyError(
            f"DAMON on {machine.name} is busy: kernel thread(s) {names} run outside the sysfs "
            "interface (DAMON_RECLAIM, DAMON_LRU_SORT or another user); damon-eval never "
            "touches other kdamonds. Turn them off first"
        )
