"""The mainline DAMON sysfs interface (``/sys/kernel/mm/damon/admin``, Linux 5.18+).

A start on a guest takes three round trips (each
:meth:`~damon_eval.fs.FileSystem.execute` is one):

1. the probe (read-only): ``nr_kdamonds`` and the states/pids of the first
   kdamonds, boot id (refuse if one runs; a second read only beyond
   :data:`~damon_eval.damon.sysfs_layout.SPECULATIVE_KDAMONDS` kdamonds),
2. staging (:mod:`damon_eval.damon.sysfs_staging`): every ``nr_*`` file, the
   listings of the new directories, every leaf value and its read-back,
3. ``state`` = ``on`` followed by reading ``state`` and ``pid``.

Stopping takes two: ``state``/``pid``/``nr_kdamonds``, then ``off``, its
check and the removal of our kdamond directory.  File names come from
:mod:`damon_eval.damon.sysfs_layout`; statistics are read by
:mod:`damon_eval.damon.sysfs_stats`.

Features are detected from which files exist, never from the kernel version
alone (:mod:`damon_eval.damon.sysfs_features`).
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Sequence
from typing import Any

from damon_eval.damon.backend import (
    DamonBackend,
    DebugfsRecord,
    Features,
    KdamondHandle,
    KdamondStatus,
    SchemeStats,
    TriedRegions,
    parse_int,
)
from damon_eval.damon.errors import (
    DamonBusyError,
    DamonError,
    DamonUnsupportedError,
    translate_fs_error,
)
from damon_eval.damon.model import Context, Kdamond
from damon_eval.damon.probe import TargetProbe
from damon_eval.damon.sysfs_features import SysfsFeatures
from damon_eval.damon.sysfs_layout import (
    SYSFS_ADMIN,
    SZ_OPS_FILTER_PASSED,
    TRIED_REGIONS,
    SysfsLayout,
    SysfsPaths,
)
from damon_eval.damon.sysfs_staging import stage
from damon_eval.damon.sysfs_stats import (
    StateRow,
    context_reads,
    pid_of,
    speculative_state_reads,
    state_reads,
    state_row,
    state_rows,
    stats_reads,
    statuses_from,
    tried_region_reads,
    tried_regions_dirs,
)
from damon_eval.errors import FsError
from damon_eval.fs import FileSystem, ListDir, Op, Read, ReadIfExists, Write

log = logging.getLogger(__name__)


class SysfsBackend(SysfsFeatures, DamonBackend):
    """Drives ``<admin>/kdamonds`` through a :class:`~damon_eval.fs.FileSystem`."""

    interface = "sysfs"

    def __init__(self, fs: FileSystem, admin: str = SYSFS_ADMIN):
        super().__init__(fs)
        self.admin = admin
        self.paths = SysfsPaths(admin)
        self.kdamonds_dir = self.paths.kdamonds_dir
        self.layout: SysfsLayout | None = None
        self._configs: dict[int, Kdamond] = {}
        self._features: Features | None = None

    # Paths -----------------------------------------------------------------

    def kdamond_dir(self, index: int) -> str:
        return self.paths.kdamond_dir(index)

    def context_dir(self, index: int) -> str:
        return self.paths.context_dir(index)

    def scheme_dir(self, index: int, scheme_index: int) -> str:
        return self.paths.scheme_dir(index, scheme_index)

    # Read-only views ---------------------------------------------------------

    @property
    def nr_kdamonds_path(self) -> str:
        return self.paths.nr_kdamonds

    def _nr_kdamonds(self) -> int:
        (text,) = self.run([Read(self.nr_kdamonds_path)], "reading nr_kdamonds")
        return parse_int(text, self.nr_kdamonds_path)

    def probe_ops(self) -> list[Op]:
        return [ReadIfExists(self.nr_kdamonds_path), *speculative_state_reads(self.paths)]

    def present_in(self, probe: TargetProbe) -> bool:
        return probe.get(ReadIfExists(self.nr_kdamonds_path)) is not None

    def _states(self) -> list[StateRow]:
        """``(state, pid, nr_contexts)`` of every kdamond: one round trip for up to
        :data:`SPECULATIVE_KDAMONDS` kdamonds, two beyond."""
        ops: list[Op] = [Read(self.nr_kdamonds_path), *speculative_state_reads(self.paths)]
        values = self.run(ops, "reading kdamond states")
        rows = state_rows(self.paths, values[0], dict(zip(ops, values, strict=True)).get)
        if rows is not None:
            return rows
        count = parse_int(values[0], self.nr_kdamonds_path)
        exact = [op for i in range(count) for op in state_reads(self.paths, i, Read)]
        values = self.run(exact, "reading kdamond states")
        return [state_row(self.paths, i, values[3 * i : 3 * i + 3]) for i in range(count)]

    def _probed_states(self, probe: TargetProbe) -> list[StateRow]:
        nr_text = probe.get(ReadIfExists(self.nr_kdamonds_path))
        rows = state_rows(self.paths, nr_text, probe.get) if nr_text is not None else None
        return rows if rows is not None else self._states()

    def kdamonds(self) -> list[KdamondStatus]:
        return self._statuses(self._states())

    def _statuses(self, rows: list[StateRow], only: set[int] | None = None) -> list[KdamondStatus]:
        """Statuses with context details (one more round trip) for ``only`` or all."""
        with_context = [
            i for i, row in enumerate(rows) if row[2] > 0 and (only is None or i in only)
        ]
        values = []
        if with_context:
            values = self.run(context_reads(self.paths, with_context), "reading kdamond contexts")
        return statuses_from(rows, with_context, values)

    # Starting ----------------------------------------------------------------

    def _refuse_if_running(self, probe: TargetProbe) -> list[StateRow]:
        rows = self._probed_states(probe)
        running = {i for i, row in enumerate(rows) if row[0] == "on"}
        if running:
            first = self._statuses(rows, only={min(running)})[min(running)]
            what = f"operations {first.operations}, " if first.operations else ""
            raise DamonBusyError(
                f"kdamond {first.index} at {self.kdamond_dir(first.index)} is running "
                f"({what}pid {first.pid}) and was not started by this damon-eval session. "
                "Adding a kdamond means writing nr_kdamonds, which the kernel refuses while any "
                "kdamond runs (and which would destroy it otherwise). Nothing was changed; stop "
                f"it first (echo off > {self.paths.state(first.index)}) or use another "
                "machine or guest"
            )
        return rows

    def start(
        self,
        kdamond: Kdamond,
        *,
        record: DebugfsRecord | None = None,
        probe: TargetProbe | None = None,
    ) -> KdamondHandle:
        if record is not None:
            raise DamonUnsupportedError(
                "in-kernel recording (the debugfs 'record' file) existed only in the seed's "
                "kernels; on sysfs kernels record through tracefs"
            )
        probe = self._fresh_probe(probe)
        idle = self._refuse_if_running(probe)
        if idle:
            log.warning(
                "resetting %d idle kdamond director%s under %s (writing nr_kdamonds recreates "
                "them all)",
                len(idle),
                "y" if len(idle) == 1 else "ies",
                self.kdamonds_dir,
            )
        index = 0
        self._stage(index, kdamond, create=True)
        kd = self.kdamond_dir(index)
        # 'on' and its check in one batch: a failing 'on' stops the batch with its errno.
        state_path, pid_path = self.paths.state(index), self.paths.pid(index)
        ops: list[Op] = [Write(state_path, "on"), Read(state_path), Read(pid_path)]
        try:
            values = self.fs.execute(ops)
        except FsError as exc:
            error = self._on_failed(exc, kd, kdamond.context)
            self._remove_refused(index)
            raise error from exc
        state, pid_text = values[1].strip(), values[2]
        if state != "on":
            self._remove_refused(index)
            raise DamonError(
                f"kdamond {index} did not start: {state_path} reads {state!r} right after 'on' "
                "(did the target process exit?)"
            )
        pid = pid_of(pid_text)
        if pid is None:
            raise DamonError(f"kdamond {index} is on but {pid_path} reads {pid_text!r}")
        self._configs[index] = kdamond
        return KdamondHandle(interface=self.interface, index=index, pid=pid, boot_id=probe.boot_id)

    def _remove_refused(self, index: int) -> None:
        """Remove the directory a refused start staged (best effort), so a refused
        start leaves the machine as it was, like a stopped session does.

        Starts always stage kdamond 0 after resetting idle ones, so ``nr_kdamonds``
        0 removes only ours; the kernel refuses it (EBUSY) if anything is on.
        """
        try:
            self.run(
                [Write(self.nr_kdamonds_path, "0")],
                f"removing the directory of kdamond {index}, which the kernel refused to start",
            )
        except DamonError as exc:
            log.warning("left the refused kdamond %d's directory in place: %s", index, exc)

    def _on_failed(self, exc: FsError, kd: str, context: Context) -> DamonError:
        if exc.errno == errno.EINVAL:  # the kernel rejected the parameters
            pids = [t.pid for t in context.targets if t.pid is not None]
            return DamonError(
                f"the kernel refused to turn {kd} on ({exc}); it checks parameters only now: "
                f"target pids {pids} must exist, regions must not overlap, "
                "min_nr_regions <= max_nr_regions, sample_us <= aggr_us, and the operations "
                f"set {context.operations!r} must be built in"
            )
        return translate_fs_error(exc, f"turning {kd} on")

    def _stage(self, index: int, kdamond: Kdamond, *, create: bool) -> None:
        self.layout = stage(self.fs, self.paths, index, kdamond, self.layout, create=create)
        self._features = None

    # Running kdamonds ----------------------------------------------------------

    def state_of(self, handle: KdamondHandle) -> tuple[str, int | None]:
        state_path = self.paths.state(handle.index)
        state, pid = self.run(
            [ReadIfExists(state_path), ReadIfExists(self.paths.pid(handle.index))],
            f"reading {state_path}",
        )
        if state is None:  # the directory is gone (nr_kdamonds rewritten)
            return "absent", None
        return state.strip(), pid_of(pid) if pid is not None else None

    def _require_ours(self, handle: KdamondHandle, doing: str) -> None:
        state, pid = self.state_of(handle)
        if state != "on" or pid != handle.pid:
            raise DamonError(
                f"cannot {doing}: kdamond {handle.index} is {state} with pid {pid}, "
                f"not the kdamond damon-eval started (pid {handle.pid})"
            )

    def _state_command(self, handle: KdamondHandle, command: str) -> Write:
        return Write(self.paths.state(handle.index), command)

    def _run_command(self, handle: KdamondHandle, ops: Sequence[Op], doing: str) -> list[Any]:
        """Run ops starting with a state command; explain a failure by the kdamond's state."""
        try:
            return self.run(ops, doing)
        except DamonError as exc:
            state, pid = self.state_of(handle)
            if state != "on" or pid != handle.pid:
                raise DamonError(
                    f"{doing}: kdamond {handle.index} is not running any more (state {state}, "
                    f"pid {pid}; did its target process exit?): {exc}"
                ) from exc
            raise

    def commit(self, handle: KdamondHandle, kdamond: Kdamond) -> None:
        self._require_ours(handle, "commit new parameters")
        self._stage(handle.index, kdamond, create=False)
        self._run_command(
            handle,
            [self._state_command(handle, "commit")],
            f"committing parameters of {self.kdamond_dir(handle.index)}",
        )
        self._configs[handle.index] = kdamond

    def _nr_schemes(self, handle: KdamondHandle) -> int:
        config = self._configs.get(handle.index)
        if config is not None:
            return len(config.context.schemes)
        path = self.paths.nr_schemes(handle.index)
        (text,) = self.run([Read(path)], "reading nr_schemes")
        return parse_int(text, path)

    def _stats_layout(self, handle: KdamondHandle) -> frozenset[str]:
        if self.layout is None or self.layout.stats_files is None:
            (listing,) = self.run(
                [ListDir(self.paths.stats_dir(handle.index, 0))], "listing scheme stats"
            )
            return frozenset(listing)
        return self.layout.stats_files

    def scheme_stats(self, handle: KdamondHandle) -> tuple[SchemeStats, ...]:
        count = self._nr_schemes(handle)
        if count == 0:
            return ()
        reads = stats_reads(self.paths, handle.index, count, self._stats_layout(handle))
        values = self._run_command(
            handle,
            [self._state_command(handle, "update_schemes_stats"), *reads.ops],
            f"updating scheme stats of {self.kdamond_dir(handle.index)}",
        )[1:]
        return reads.parse(values)

    def _require_tried_regions(self) -> None:
        if self.layout is not None and self.layout.has_scheme_file(TRIED_REGIONS) is False:
            raise DamonUnsupportedError("this kernel has no tried_regions (Linux 6.2+)")

    def tried_regions(
        self, handle: KdamondHandle, scheme_indexes: Sequence[int] | None = None
    ) -> tuple[TriedRegions, ...]:
        self._require_tried_regions()
        indexes = list(
            range(self._nr_schemes(handle)) if scheme_indexes is None else scheme_indexes
        )
        if not indexes:
            return ()
        dirs = tried_regions_dirs(self.paths, handle.index, indexes)
        listings = self._run_command(
            handle,
            [self._state_command(handle, "update_schemes_tried_regions")]
            + [ListDir(d) for d in dirs],
            f"updating tried regions of {self.kdamond_dir(handle.index)}",
        )[1:]
        with_filter_bytes = (
            self.layout is not None
            and self.layout.stats_files is not None
            and SZ_OPS_FILTER_PASSED in self.layout.stats_files
        )
        reads = tried_region_reads(indexes, dirs, listings, with_filter_bytes=with_filter_bytes)
        values = self.run(list(reads.ops), "reading tried regions") if reads.ops else []
        return reads.parse(values)

    def clear_tried_regions(self, handle: KdamondHandle) -> None:
        """Drop the kernel's tried-regions directories (``clear_schemes_tried_regions``)."""
        self._require_tried_regions()
        self.run(
            [self._state_command(handle, "clear_schemes_tried_regions")],
            f"clearing tried regions of {self.kdamond_dir(handle.index)}",
        )

    def tried_bytes(self, handle: KdamondHandle) -> tuple[int, ...]:
        """Total bytes of each scheme's tried regions (``update_schemes_tried_bytes``, 6.6+)."""
        self._require_tried_regions()
        count = self._nr_schemes(handle)
        paths = [self.paths.tried_bytes(handle.index, s) for s in range(count)]
        values = self._run_command(
            handle,
            [self._state_command(handle, "update_schemes_tried_bytes")] + [Read(p) for p in paths],
            f"updating tried bytes of {self.kdamond_dir(handle.index)}",
        )[1:]
        return tuple(parse_int(v, p) for v, p in zip(values, paths, strict=True))

    def turn_off(self, handle: KdamondHandle) -> bool:
        state, pid = self.state_of(handle)
        if state != "on":
            return False
        if _someone_elses(handle, pid):
            return False
        kd = self.kdamond_dir(handle.index)
        try:
            self.run([Write(self.paths.state(handle.index), "off")], f"turning {kd} off")
        except DamonError:
            # The kdamond may have stopped by itself meanwhile (its target exited).
            if self.state_of(handle)[0] != "on":
                return False
            raise
        return True

    def release(self, handle: KdamondHandle) -> None:
        """Remove the kdamond directory the start created, if it is the only one and off.

        Leaves the machine as it was (``nr_kdamonds`` 0) so the next start and
        ``damon status`` see no leftovers.  Best effort: any doubt leaves it.
        """
        try:
            rows = self._states()
            if handle.index != 0 or len(rows) != 1 or rows[0][0] != "off":
                return
            self.run([Write(self.nr_kdamonds_path, "0")], "removing the kdamond directory")
        except DamonError as exc:
            log.warning("left kdamond %d's directory in place: %s", handle.index, exc)
            return
        self._configs.pop(handle.index, None)

    def stop(self, handle: KdamondHandle) -> bool:
        """:meth:`turn_off` and :meth:`release` in two round trips: read the slot's
        state, pid and ``nr_kdamonds``; then write ``off`` (only while our pid runs
        there), read ``state``, and write ``nr_kdamonds`` 0 when ours is the only
        kdamond (the kernel refuses that with EBUSY while any kdamond runs)."""
        kd = self.kdamond_dir(handle.index)
        state_path = self.paths.state(handle.index)
        state_text, pid_text, nr_text = self.run(
            [
                ReadIfExists(state_path),
                ReadIfExists(self.paths.pid(handle.index)),
                Read(self.nr_kdamonds_path),
            ],
            f"reading {state_path}",
        )
        if state_text is None:  # the directory is gone (nr_kdamonds rewritten)
            return False
        state = state_text.strip()
        pid = pid_of(pid_text) if pid_text is not None else None
        if state == "on" and _someone_elses(handle, pid):
            return False
        ours_running = state == "on"
        ops: list[Op] = [Write(state_path, "off"), Read(state_path)] if ours_running else []
        release = handle.index == 0 and parse_int(nr_text, self.nr_kdamonds_path) == 1
        if release:
            ops.append(Write(self.nr_kdamonds_path, "0"))
        if not ops:
            return False
        try:
            self.fs.execute(ops)
        except FsError as exc:
            if ours_running and (exc.index is None or exc.index == 0):
                # 'off' failed: the kdamond may have stopped by itself meanwhile.
                if self.state_of(handle)[0] != "on":
                    self.release(handle)
                    return False
                raise translate_fs_error(exc, f"turning {kd} off") from exc
            log.warning(
                "left kdamond %d's directory in place: %s",
                handle.index,
                translate_fs_error(exc, "removing the kdamond directory"),
            )
            return ours_running
        if release:
            self._configs.pop(handle.index, None)
        return ours_running


def _someone_elses(handle: KdamondHandle, pid: int | None) -> bool:
    """Whether ``handle``'s kdamond now runs under another pid (then it is left alone)."""
    if pid == handle.pid:
        return False
    log.warning(
        "kdamond %d now runs with pid %s, not damon-eval's pid %d: leaving it alone",
        handle.index,
        pid,
        handle.pid,
    )
    return True
