"""The mainline DAMON sysfs interface (``/sys/kernel/mm/damon/admin``, Linux 5.18+).

Staging follows the kernel's rules: a ``nr_*`` file is written before the
numbered directories it creates are used; nothing is validated by the kernel
until ``on`` or ``commit``.  Work is batched so that a start on a guest takes
three round trips (each :meth:`~damon_eval.fs.FileSystem.execute` is one):

1. the probe (read-only): ``nr_kdamonds`` and the states/pids of the first
   kdamonds, boot id (refuse if one runs; a second read only beyond
   :data:`SPECULATIVE_KDAMONDS` kdamonds),
2. staging: every ``nr_*`` file (each creates the directories the next writes
   go to), listings of the new directories (feature detection),
   ``avail_operations``, every leaf value, then every value read back;
   optional files (``apply_interval_us``, filters' ``allow``) are written only
   where they exist.  Mismatches are refused before ``on``.  Filters need the
   layout first: one more round trip the first time on a back end.
3. ``state`` = ``on`` followed by reading ``state`` and ``pid``.

Stopping takes two: ``state``/``pid``/``nr_kdamonds``, then ``off``, its
check and the removal of our kdamond directory.

Features are detected from which files exist, never from the kernel version
alone (see docs/anchors: ``_damon_features.py`` of damo for the history).
"""

from __future__ import annotations

import errno
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from damon_eval.damon.backend import (
    SYSFS_ADMIN,
    DamonBackend,
    DebugfsRecord,
    Features,
    KdamondHandle,
    KdamondStatus,
    SchemeStats,
    TriedRegion,
    TriedRegions,
    parse_int,
    translate_fs_error,
)
from damon_eval.damon.errors import (
    DamonBusyError,
    DamonError,
    DamonReadbackError,
    DamonUnsupportedError,
)
from damon_eval.damon.model import (
    Context,
    Filter,
    Kdamond,
    Scheme,
    filter_sysfs_files,
    scheme_sysfs_files,
)
from damon_eval.damon.probe import TargetProbe
from damon_eval.errors import FsError
from damon_eval.fs import (
    FileSystem,
    ListDir,
    ListDirIfExists,
    Op,
    Read,
    ReadIfExists,
    Write,
    WriteIfExists,
)

log = logging.getLogger(__name__)

STATS_FILES = ("nr_tried", "sz_tried", "nr_applied", "sz_applied", "qt_exceeds")
OPTIONAL_STATS_FILES = ("sz_ops_filter_passed", "nr_snapshots", "max_nr_snapshots")
BASE_ACTIONS = ("willneed", "cold", "pageout", "hugepage", "nohugepage", "stat")
SPECULATIVE_KDAMONDS = 4
"""Kdamonds whose state the first batch reads before it knows ``nr_kdamonds``."""

StateRow = tuple[str, int | None, int]
"""``(state, pid, nr_contexts)`` of one kdamond."""


@dataclass(frozen=True, slots=True)
class _Leaf:
    """One value to write and read back.  An ``optional`` file is written only if
    the kernel has it; ``needed_by`` says why its absence is an error (the value
    is not the kernel's default)."""

    path: str
    value: str
    optional: bool = False
    needed_by: str | None = None


@dataclass(frozen=True, slots=True)
class SysfsLayout:
    """Which files a kernel's kdamond/context/scheme directories have.

    ``None`` members were not observed (no such directory existed to list).
    """

    kdamond_files: frozenset[str]
    context_files: frozenset[str]
    interval_files: frozenset[str]
    scheme_files: frozenset[str] | None = None
    quota_files: frozenset[str] | None = None
    stats_files: frozenset[str] | None = None
    filter_files: frozenset[str] | None = None
    tried_region_files: frozenset[str] | None = None

    def completed_by(self, older: SysfsLayout | None) -> SysfsLayout:
        """This layout, with members it did not observe taken from ``older``."""
        if older is None:
            return self
        return SysfsLayout(
            kdamond_files=self.kdamond_files,
            context_files=self.context_files,
            interval_files=self.interval_files,
            **{
                name: getattr(self, name)
                if getattr(self, name) is not None
                else getattr(older, name)
                for name in (
                    "scheme_files",
                    "quota_files",
                    "stats_files",
                    "filter_files",
                    "tried_region_files",
                )
            },
        )

    @property
    def has_avail_operations(self) -> bool:
        return "avail_operations" in self.context_files

    @property
    def filter_dirs(self) -> tuple[str, ...] | None:
        if self.scheme_files is None:
            return None
        if "core_filters" in self.scheme_files:
            return ("core_filters", "ops_filters")
        return ("filters",) if "filters" in self.scheme_files else ()

    def has_scheme_file(self, name: str) -> bool | None:
        return None if self.scheme_files is None else name in self.scheme_files

    def state_commands(self) -> tuple[str, ...]:
        """The ``state`` commands this kernel accepts, judged by the files they come with."""
        commands = ["on", "off"]
        if self.has_avail_operations:  # online commit arrived with avail_operations (5.19)
            commands.append("commit")
        if "intervals_goal" in self.interval_files:
            commands.append("update_tuned_intervals")
        if self.stats_files is not None:
            commands.append("update_schemes_stats")
        if self.has_scheme_file("tried_regions"):
            commands += ["update_schemes_tried_regions", "clear_schemes_tried_regions"]
            if self.tried_region_files is not None and "total_bytes" in self.tried_region_files:
                commands.append("update_schemes_tried_bytes")
        if self.quota_files is not None:
            if "goals" in self.quota_files:
                commands.append("commit_schemes_quota_goals")
            if "effective_bytes" in self.quota_files:
                commands.append("update_schemes_effective_quotas")
        return tuple(commands)

    def capabilities(self) -> tuple[str, ...]:
        found: list[str] = []
        for name in ("avail_operations", "addr_unit"):
            if name in self.context_files:
                found.append(name)
        if "refresh_ms" in self.kdamond_files:
            found.append("refresh_ms")
        if "intervals_goal" in self.interval_files:
            found.append("intervals_goal")
        if self.scheme_files is not None:
            for name in (
                "apply_interval_us",
                "target_nid",
                "tried_regions",
                "filters",
                "core_filters",
                "ops_filters",
                "dests",
            ):
                if name in self.scheme_files:
                    found.append(name)
        if self.quota_files is not None:
            found += [f"quotas/{n}" for n in ("goals", "effective_bytes") if n in self.quota_files]
        if self.stats_files is not None:
            found += [f"stats/{n}" for n in OPTIONAL_STATS_FILES if n in self.stats_files]
        if self.filter_files is not None and "allow" in self.filter_files:
            found.append("filters/allow")
        if self.tried_region_files is not None and "total_bytes" in self.tried_region_files:
            found.append("tried_regions/total_bytes")
        return tuple(found)


def _release_tuple(release: str | None) -> tuple[int, int] | None:
    match = re.match(r"^(\d+)\.(\d+)", release or "")
    return (int(match[1]), int(match[2])) if match else None


def _same(written: str, read: str) -> bool:
    read = read.strip()
    if written in ("Y", "N"):
        return read[:1].upper() in (("Y", "1") if written == "Y" else ("N", "0"))
    if written.isdigit():
        return read.isdigit() and int(read) == int(written)
    return read == written


class SysfsBackend(DamonBackend):
    """Drives ``<admin>/kdamonds`` through a :class:`~damon_eval.fs.FileSystem`."""

    interface = "sysfs"

    def __init__(self, fs: FileSystem, admin: str = SYSFS_ADMIN):
        super().__init__(fs)
        self.admin = admin
        self.kdamonds_dir = f"{admin}/kdamonds"
        self.layout: SysfsLayout | None = None
        self._configs: dict[int, Kdamond] = {}
        self._features: Features | None = None

    # Paths -----------------------------------------------------------------

    def kdamond_dir(self, index: int) -> str:
        return f"{self.kdamonds_dir}/{index}"

    def context_dir(self, index: int) -> str:
        return f"{self.kdamond_dir(index)}/contexts/0"

    def scheme_dir(self, index: int, scheme_index: int) -> str:
        return f"{self.context_dir(index)}/schemes/{scheme_index}"

    # Read-only views ---------------------------------------------------------

    @property
    def nr_kdamonds_path(self) -> str:
        return f"{self.kdamonds_dir}/nr_kdamonds"

    def _nr_kdamonds(self) -> int:
        (text,) = self.run([Read(self.nr_kdamonds_path)], "reading nr_kdamonds")
        return parse_int(text, self.nr_kdamonds_path)

    def _state_reads(self, index: int, read: type[Read] | type[ReadIfExists]) -> list[Op]:
        kd = self.kdamond_dir(index)
        return [read(f"{kd}/state"), read(f"{kd}/pid"), read(f"{kd}/contexts/nr_contexts")]

    def _speculative_state_reads(self) -> list[Op]:
        return [
            op for i in range(SPECULATIVE_KDAMONDS) for op in self._state_reads(i, ReadIfExists)
        ]

    def probe_ops(self) -> list[Op]:
        return [ReadIfExists(self.nr_kdamonds_path), *self._speculative_state_reads()]

    def present_in(self, probe: TargetProbe) -> bool:
        return probe.get(ReadIfExists(self.nr_kdamonds_path)) is not None

    def _row(self, index: int, values: Sequence[str]) -> StateRow:
        return (
            values[0].strip(),
            _pid(values[1]),
            parse_int(values[2], f"{self.kdamond_dir(index)}/contexts/nr_contexts"),
        )

    def _rows(self, nr_text: str, lookup: Callable[[Op], Any]) -> list[StateRow] | None:
        """Rows from speculative reads; None when they do not cover every kdamond."""
        rows = []
        for i in range(parse_int(nr_text, self.nr_kdamonds_path)):
            values = [lookup(op) for op in self._state_reads(i, ReadIfExists)]
            if any(v is None for v in values):
                return None
            rows.append(self._row(i, values))
        return rows

    def _states(self) -> list[StateRow]:
        """``(state, pid, nr_contexts)`` of every kdamond: one round trip for up to
        :data:`SPECULATIVE_KDAMONDS` kdamonds, two beyond."""
        ops: list[Op] = [Read(self.nr_kdamonds_path), *self._speculative_state_reads()]
        values = self.run(ops, "reading kdamond states")
        rows = self._rows(values[0], dict(zip(ops, values, strict=True)).get)
        if rows is not None:
            return rows
        count = parse_int(values[0], self.nr_kdamonds_path)
        exact = [op for i in range(count) for op in self._state_reads(i, Read)]
        values = self.run(exact, "reading kdamond states")
        return [self._row(i, values[3 * i : 3 * i + 3]) for i in range(count)]

    def _probed_states(self, probe: TargetProbe) -> list[StateRow]:
        nr_text = probe.get(ReadIfExists(self.nr_kdamonds_path))
        rows = self._rows(nr_text, probe.get) if nr_text is not None else None
        return rows if rows is not None else self._states()

    def kdamonds(self) -> list[KdamondStatus]:
        return self._statuses(self._states())

    def _statuses(
        self, rows: list[tuple[str, int | None, int]], only: set[int] | None = None
    ) -> list[KdamondStatus]:
        """Statuses with context details (one more round trip) for ``only`` or all."""
        with_context = [
            i for i, row in enumerate(rows) if row[2] > 0 and (only is None or i in only)
        ]
        details: dict[int, list[str]] = {}
        if with_context:
            detail_ops: list[Op] = []
            for i in with_context:
                ctx = self.context_dir(i)
                detail_ops += [
                    Read(f"{ctx}/operations"),
                    Read(f"{ctx}/targets/nr_targets"),
                    Read(f"{ctx}/schemes/nr_schemes"),
                ]
            detail = self.run(detail_ops, "reading kdamond contexts")
            for n, i in enumerate(with_context):
                details[i] = detail[3 * n : 3 * n + 3]
        statuses = []
        for i, (state, pid, _) in enumerate(rows):
            extra = details.get(i)
            statuses.append(
                KdamondStatus(
                    index=i,
                    state=state,
                    pid=pid,
                    operations=extra[0].strip() if extra else None,
                    nr_targets=parse_int(extra[1], "nr_targets") if extra else None,
                    nr_schemes=parse_int(extra[2], "nr_schemes") if extra else None,
                )
            )
        return statuses

    def _observe_layout(self, statuses: list[KdamondStatus]) -> SysfsLayout | None:
        """List the directories of an existing kdamond with a context (read-only)."""
        candidates = [s for s in statuses if s.operations is not None]
        if not candidates:
            return None
        best = max(candidates, key=lambda s: (s.nr_schemes or 0) > 0)
        kd, ctx = self.kdamond_dir(best.index), self.context_dir(best.index)
        ops: list[Op] = [
            ListDir(kd),
            ListDir(ctx),
            ListDir(f"{ctx}/monitoring_attrs/intervals"),
        ]
        if best.nr_schemes:
            scheme = self.scheme_dir(best.index, 0)
            ops += [ListDir(scheme), ListDir(f"{scheme}/quotas"), ListDir(f"{scheme}/stats")]
        values = self.run(ops, "listing kdamond directories")
        tried: frozenset[str] | None = None
        if best.nr_schemes and "tried_regions" in values[3]:
            (listing,) = self.run(
                [ListDir(f"{self.scheme_dir(best.index, 0)}/tried_regions")],
                "listing tried_regions",
            )
            tried = frozenset(listing)
        return SysfsLayout(
            kdamond_files=frozenset(values[0]),
            context_files=frozenset(values[1]),
            interval_files=frozenset(values[2]),
            scheme_files=frozenset(values[3]) if best.nr_schemes else None,
            quota_files=frozenset(values[4]) if best.nr_schemes else None,
            stats_files=frozenset(values[5]) if best.nr_schemes else None,
            tried_region_files=tried,
        )

    def features(self, *, refresh: bool = False) -> Features:
        if self._features is not None and not refresh:
            return self._features
        probe = self.probe()
        release = probe.kernel_release
        notes: list[str] = []
        statuses = self._statuses(self._probed_states(probe))
        observed = self._observe_layout(statuses)
        layout = observed.completed_by(self.layout) if observed is not None else self.layout
        if observed is not None:
            # Same kernel, same files: later calls (and probe_features after removing its
            # scratch directory) keep what was seen.
            self.layout = layout
        operations: tuple[str, ...] | None = None
        with_context = [s.index for s in statuses if s.operations is not None]
        if layout is None:
            notes.append(
                "no kdamond directory with a context exists to inspect; operations, "
                "actions and state commands are unknown until damon-eval starts a kdamond"
            )
        elif layout.has_avail_operations and with_context:
            (avail,) = self.run(
                [Read(f"{self.context_dir(with_context[0])}/avail_operations")],
                "reading avail_operations",
            )
            operations = tuple(avail.split())
        elif not layout.has_avail_operations:
            operations = ("vaddr", "paddr")
            notes.append("no avail_operations file (Linux < 5.19): vaddr and paddr assumed")
        actions: tuple[str, ...] | None = None
        if layout is not None:
            actions = BASE_ACTIONS
            version = _release_tuple(release)
            if version is None or version >= (6, 0):
                actions += ("lru_prio", "lru_deprio")
            if layout.has_scheme_file("target_nid"):
                actions += ("migrate_hot", "migrate_cold")
        self._features = Features(
            interface=self.interface,
            root=self.admin,
            kernel_release=release,
            operations=operations,
            scheme_actions=actions,
            state_commands=layout.state_commands() if layout else None,
            tracefs=probe.tracefs,
            tracepoints=probe.tracepoints,
            capabilities=layout.capabilities() if layout else (),
            notes=tuple(notes),
        )
        return self._features

    def probe_features(self) -> Features:
        """Features, looking inside a scratch kdamond when no kdamond directory exists.

        sysfs shows context and scheme files (``avail_operations``, the scheme
        and stats files that tell actions and state commands apart) only below
        a kdamond with a context and a scheme.  With ``nr_kdamonds`` 0 this
        writes 1, gives it one context and one scheme, reads the features and
        writes 0 again: the kdamond is never turned on.  With any kdamond
        present it only reads (writing ``nr_kdamonds`` would recreate them).
        """
        if self._nr_kdamonds() != 0:
            return self.features(refresh=True)
        kd = self.kdamond_dir(0)
        try:
            self.run(
                [
                    Write(f"{self.kdamonds_dir}/nr_kdamonds", "1"),
                    Write(f"{kd}/contexts/nr_contexts", "1"),
                    Write(f"{self.context_dir(0)}/schemes/nr_schemes", "1"),
                ],
                f"creating a scratch kdamond directory under {self.kdamonds_dir}",
            )
            features = self.features(refresh=True)
        finally:
            self.run(
                [Write(f"{self.kdamonds_dir}/nr_kdamonds", "0")],
                f"removing the scratch kdamond directory under {self.kdamonds_dir}",
            )
        self._features = features
        return features

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
                f"it first (echo off > {self.kdamond_dir(first.index)}/state) or use another "
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
        ops: list[Op] = [Write(f"{kd}/state", "on"), Read(f"{kd}/state"), Read(f"{kd}/pid")]
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
                f"kdamond {index} did not start: {kd}/state reads {state!r} right after 'on' "
                "(did the target process exit?)"
            )
        pid = _pid(pid_text)
        if pid is None:
            raise DamonError(f"kdamond {index} is on but {kd}/pid reads {pid_text!r}")
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
                [Write(f"{self.kdamonds_dir}/nr_kdamonds", "0")],
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
        """Write everything but ``state``, read it all back and check it (see the module
        docstring): one round trip, two for filters on a back end that has not seen
        the kernel's scheme directory yet."""
        context = kdamond.context
        kd, ctx = self.kdamond_dir(index), self.context_dir(index)
        nr_ops: list[Op] = []
        if create:
            nr_ops += [
                Write(self.nr_kdamonds_path, "1"),
                Write(f"{kd}/contexts/nr_contexts", "1"),
            ]
        nr_ops.append(Write(f"{ctx}/targets/nr_targets", str(len(context.targets))))
        for t, target in enumerate(context.targets):
            nr_ops.append(Write(f"{ctx}/targets/{t}/regions/nr_regions", str(len(target.regions))))
        nr_ops.append(Write(f"{ctx}/schemes/nr_schemes", str(len(context.schemes))))
        listing_ops: list[Op] = [
            ListDir(kd),
            ListDir(ctx),
            ListDir(f"{ctx}/monitoring_attrs/intervals"),
        ]
        if context.schemes:
            scheme = self.scheme_dir(index, 0)
            listing_ops += [
                ListDir(scheme),
                ListDir(f"{scheme}/quotas"),
                ListDir(f"{scheme}/stats"),
                ListDirIfExists(f"{scheme}/tried_regions"),
            ]
        avail = ReadIfExists(f"{ctx}/avail_operations")
        head: list[Op] = [*nr_ops, *listing_ops, avail]
        doing = f"staging the parameters of {kd}"
        has_filters = any(s.filters for s in context.schemes)
        if has_filters and (self.layout is None or self.layout.scheme_files is None):
            # Where filters go depends on the scheme directory's files.
            values = self._run_staging(head, len(head) - 1, context, ctx, doing)
            layout = self._layout_from(context, values[len(nr_ops) : len(head) - 1])
            self._check_operations(context, ctx, values[-1])
            leaves, leaf_ops = self._leaf_ops(index, context, layout)
            leaf_values = self._run_staging(leaf_ops, None, context, ctx, doing)
        else:
            leaves, leaf_ops = self._leaf_ops(index, context, self.layout)
            values = self._run_staging([*head, *leaf_ops], len(head) - 1, context, ctx, doing)
            layout = self._layout_from(context, values[len(nr_ops) : len(head) - 1])
            self._check_operations(context, ctx, values[len(head) - 1])
            leaf_values = values[len(head) :]
        filter_listing = self._check_leaves(leaves, leaf_ops, leaf_values)
        if filter_listing is not None:
            layout = _with_filter_files(layout, filter_listing)
        self.layout = layout.completed_by(self.layout)
        self._features = None

    def _run_staging(
        self, ops: list[Op], avail_at: int | None, context: Context, ctx: str, doing: str
    ) -> list[Any]:
        """Run a staging batch; a failing write after ``avail_operations`` was read
        is explained by it when the operations set is the cause."""
        try:
            return self.fs.execute(ops)
        except FsError as exc:
            if avail_at is not None and exc.index is not None and exc.index > avail_at:
                self._check_operations(context, ctx, exc.completed[avail_at])
            raise translate_fs_error(exc, doing) from exc

    def _check_operations(self, context: Context, ctx: str, avail: object) -> None:
        if not isinstance(avail, str):  # no avail_operations file (Linux < 5.19)
            return
        available = avail.split()
        if context.operations not in available:
            raise DamonUnsupportedError(
                f"operations set {context.operations!r} is not available on "
                f"{self.fs.description}; {ctx}/avail_operations lists "
                f"{' '.join(available) or 'nothing'}"
            )

    @staticmethod
    def _layout_from(context: Context, listings: Sequence[Any]) -> SysfsLayout:
        schemes = bool(context.schemes)
        tried = listings[6] if schemes else None
        return SysfsLayout(
            kdamond_files=frozenset(listings[0]),
            context_files=frozenset(listings[1]),
            interval_files=frozenset(listings[2]),
            scheme_files=frozenset(listings[3]) if schemes else None,
            quota_files=frozenset(listings[4]) if schemes else None,
            stats_files=frozenset(listings[5]) if schemes else None,
            tried_region_files=frozenset(tried) if tried is not None else None,
        )

    def _filter_placement(
        self, scheme: Scheme, layout: SysfsLayout | None, scheme_index: int
    ) -> dict[str, list[Filter]]:
        if not scheme.filters:
            return {}
        dirs = layout.filter_dirs if layout is not None else None
        if dirs is None:
            raise DamonError("internal: filters staged before the scheme layout is known")
        if not dirs:
            raise DamonUnsupportedError(
                f"scheme {scheme_index} has filters but this kernel has no DAMOS filters "
                "directory (filters need Linux 6.3+)"
            )
        if dirs == ("filters",):
            return {"filters": list(scheme.filters)}
        core = [f for f in scheme.filters if f.handled_by_core]
        ops = [f for f in scheme.filters if not f.handled_by_core]
        return {
            name: group for name, group in (("core_filters", core), ("ops_filters", ops)) if group
        }

    def _leaves(self, index: int, context: Context, layout: SysfsLayout | None) -> list[_Leaf]:
        ctx = self.context_dir(index)
        attrs = context.attrs
        leaves = [
            _Leaf(f"{ctx}/operations", context.operations),
            _Leaf(f"{ctx}/monitoring_attrs/intervals/sample_us", str(attrs.sample_us)),
            _Leaf(f"{ctx}/monitoring_attrs/intervals/aggr_us", str(attrs.aggr_us)),
            _Leaf(f"{ctx}/monitoring_attrs/intervals/update_us", str(attrs.update_us)),
            _Leaf(f"{ctx}/monitoring_attrs/nr_regions/min", str(attrs.min_nr_regions)),
            _Leaf(f"{ctx}/monitoring_attrs/nr_regions/max", str(attrs.max_nr_regions)),
        ]
        for t, target in enumerate(context.targets):
            target_dir = f"{ctx}/targets/{t}"
            if target.pid is not None:
                leaves.append(_Leaf(f"{target_dir}/pid_target", str(target.pid)))
            for r, region in enumerate(target.regions):
                leaves.append(_Leaf(f"{target_dir}/regions/{r}/start", str(region.start)))
                leaves.append(_Leaf(f"{target_dir}/regions/{r}/end", str(region.end)))
        for s, scheme in enumerate(context.schemes):
            scheme_dir = self.scheme_dir(index, s)
            for relative, value in scheme_sysfs_files(scheme).items():
                if relative.startswith("filters/"):
                    continue
                if relative == "apply_interval_us":
                    needed_by = None
                    if scheme.apply_interval_us:
                        needed_by = (
                            f"scheme {s} sets apply_interval_us={scheme.apply_interval_us} but "
                            "this kernel has no apply_interval_us file (Linux 6.7+)"
                        )
                    leaves.append(_Leaf(f"{scheme_dir}/{relative}", str(value), True, needed_by))
                    continue
                leaves.append(_Leaf(f"{scheme_dir}/{relative}", str(value)))
            for dir_name, group in self._filter_placement(scheme, layout, s).items():
                for f, damos_filter in enumerate(group):
                    leafs = filter_sysfs_files(damos_filter, f"{dir_name}/{f}")
                    for relative, value in leafs.items():
                        path = f"{scheme_dir}/{relative}"
                        if relative.endswith("/allow"):
                            needed_by = None
                            if damos_filter.allow:
                                needed_by = (
                                    f"scheme {s} has an allow filter but this kernel's filters "
                                    "have no 'allow' file (Linux 6.14+)"
                                )
                            leaves.append(_Leaf(path, str(value), True, needed_by))
                        else:
                            leaves.append(_Leaf(path, str(value)))
        return leaves

    def _leaf_ops(
        self, index: int, context: Context, layout: SysfsLayout | None
    ) -> tuple[list[_Leaf], list[Op]]:
        """Filters' ``nr_filters`` and a listing of the first filter, then every leaf
        written, then every leaf read back."""
        ops: list[Op] = []
        first_filter_dir: str | None = None
        for s, scheme in enumerate(context.schemes):
            for dir_name, group in self._filter_placement(scheme, layout, s).items():
                directory = f"{self.scheme_dir(index, s)}/{dir_name}"
                ops.append(Write(f"{directory}/nr_filters", str(len(group))))
                first_filter_dir = first_filter_dir or f"{directory}/0"
        if first_filter_dir is not None:
            ops.append(ListDir(first_filter_dir))
        leaves = self._leaves(index, context, layout)
        ops += [
            WriteIfExists(leaf.path, leaf.value) if leaf.optional else Write(leaf.path, leaf.value)
            for leaf in leaves
        ]
        ops += [ReadIfExists(leaf.path) if leaf.optional else Read(leaf.path) for leaf in leaves]
        return leaves, ops

    @staticmethod
    def _check_leaves(
        leaves: list[_Leaf], ops: list[Op], values: Sequence[Any]
    ) -> list[str] | None:
        """Refuse values the kernel has no file for or reads back differently;
        returns the first filter's listing (None without filters)."""
        head = len(ops) - 2 * len(leaves)
        filter_listing = next(
            (v for op, v in zip(ops[:head], values[:head], strict=True) if isinstance(op, ListDir)),
            None,
        )
        written = values[head : head + len(leaves)]
        readback = values[head + len(leaves) :]
        for leaf, was_written, read in zip(leaves, written, readback, strict=True):
            if leaf.optional and was_written is False:
                if leaf.needed_by is not None:
                    raise DamonUnsupportedError(leaf.needed_by)
                continue
            if not _same(leaf.value, read):
                raise DamonReadbackError(
                    f"{leaf.path}: wrote {leaf.value!r} but the kernel reads back "
                    f"{read.strip()!r}; refusing to run with parameters other than the "
                    "requested ones"
                )
        return filter_listing

    # Running kdamonds ----------------------------------------------------------

    def state_of(self, handle: KdamondHandle) -> tuple[str, int | None]:
        kd = self.kdamond_dir(handle.index)
        state, pid = self.run(
            [ReadIfExists(f"{kd}/state"), ReadIfExists(f"{kd}/pid")], f"reading {kd}/state"
        )
        if state is None:  # the directory is gone (nr_kdamonds rewritten)
            return "absent", None
        return state.strip(), _pid(pid) if pid is not None else None

    def _require_ours(self, handle: KdamondHandle, doing: str) -> None:
        state, pid = self.state_of(handle)
        if state != "on" or pid != handle.pid:
            raise DamonError(
                f"cannot {doing}: kdamond {handle.index} is {state} with pid {pid}, "
                f"not the kdamond damon-eval started (pid {handle.pid})"
            )

    def _state_command(self, handle: KdamondHandle, command: str) -> Write:
        return Write(f"{self.kdamond_dir(handle.index)}/state", command)

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
        path = f"{self.context_dir(handle.index)}/schemes/nr_schemes"
        (text,) = self.run([Read(path)], "reading nr_schemes")
        return parse_int(text, path)

    def _stats_layout(self, handle: KdamondHandle) -> frozenset[str]:
        if self.layout is None or self.layout.stats_files is None:
            (listing,) = self.run(
                [ListDir(f"{self.scheme_dir(handle.index, 0)}/stats")], "listing scheme stats"
            )
            return frozenset(listing)
        return self.layout.stats_files

    def scheme_stats(self, handle: KdamondHandle) -> tuple[SchemeStats, ...]:
        count = self._nr_schemes(handle)
        if count == 0:
            return ()
        available = self._stats_layout(handle)
        names = [n for n in STATS_FILES if n in available]
        extras = [n for n in OPTIONAL_STATS_FILES if n in available]
        ops: list[Op] = [self._state_command(handle, "update_schemes_stats")]
        for s in range(count):
            stats_dir = f"{self.scheme_dir(handle.index, s)}/stats"
            ops += [Read(f"{stats_dir}/{n}") for n in names + extras]
        values = self._run_command(
            handle, ops, f"updating scheme stats of {self.kdamond_dir(handle.index)}"
        )[1:]
        width = len(names) + len(extras)
        result = []
        for s in range(count):
            row = dict(zip(names + extras, values[s * width : (s + 1) * width], strict=True))
            numbers = {k: parse_int(v, f"stats/{k}") for k, v in row.items()}
            result.append(
                SchemeStats(
                    nr_tried=numbers.get("nr_tried", 0),
                    sz_tried=numbers.get("sz_tried", 0),
                    nr_applied=numbers.get("nr_applied", 0),
                    sz_applied=numbers.get("sz_applied", 0),
                    qt_exceeds=numbers.get("qt_exceeds", 0),
                    extra={k: numbers[k] for k in extras},
                )
            )
        return tuple(result)

    def _require_tried_regions(self) -> None:
        if self.layout is not None and self.layout.has_scheme_file("tried_regions") is False:
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
        dirs = [f"{self.scheme_dir(handle.index, s)}/tried_regions" for s in indexes]
        listings = self._run_command(
            handle,
            [self._state_command(handle, "update_schemes_tried_regions")]
            + [ListDir(d) for d in dirs],
            f"updating tried regions of {self.kdamond_dir(handle.index)}",
        )[1:]
        with_filter_bytes = (
            self.layout is not None
            and self.layout.stats_files is not None
            and "sz_ops_filter_passed" in self.layout.stats_files
        )
        fields = ["start", "end", "nr_accesses", "age"]
        if with_filter_bytes:
            fields.append("sz_filter_passed")
        ops: list[Op] = []
        plan: list[tuple[int, list[int], bool]] = []
        for directory, listing in zip(dirs, listings, strict=True):
            region_numbers = sorted(int(n) for n in listing if n.isdigit())
            has_total = "total_bytes" in listing
            plan.append((len(ops), region_numbers, has_total))
            for r in region_numbers:
                ops += [Read(f"{directory}/{r}/{name}") for name in fields]
            if has_total:
                ops.append(Read(f"{directory}/total_bytes"))
        values = self.run(ops, "reading tried regions") if ops else []
        result = []
        for scheme_index, (offset, region_numbers, has_total) in zip(indexes, plan, strict=True):
            regions = []
            for n, _ in enumerate(region_numbers):
                row = values[offset + n * len(fields) : offset + (n + 1) * len(fields)]
                numbers = [parse_int(v, "tried region") for v in row]
                regions.append(
                    TriedRegion(
                        start=numbers[0],
                        end=numbers[1],
                        nr_accesses=numbers[2],
                        age=numbers[3],
                        sz_filter_passed=numbers[4] if with_filter_bytes else None,
                    )
                )
            total = None
            if has_total:
                total = parse_int(values[offset + len(region_numbers) * len(fields)], "total_bytes")
            result.append(TriedRegions(scheme_index, tuple(regions), total))
        return tuple(result)

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
        paths = [
            f"{self.scheme_dir(handle.index, s)}/tried_regions/total_bytes" for s in range(count)
        ]
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
        if pid != handle.pid:
            log.warning(
                "kdamond %d now runs with pid %s, not damon-eval's pid %d: leaving it alone",
                handle.index,
                pid,
                handle.pid,
            )
            return False
        kd = self.kdamond_dir(handle.index)
        try:
            self.run([Write(f"{kd}/state", "off")], f"turning {kd} off")
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
            self.run(
                [Write(f"{self.kdamonds_dir}/nr_kdamonds", "0")], "removing the kdamond directory"
            )
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
        state_text, pid_text, nr_text = self.run(
            [ReadIfExists(f"{kd}/state"), ReadIfExists(f"{kd}/pid"), Read(self.nr_kdamonds_path)],
            f"reading {kd}/state",
        )
        if state_text is None:  # the directory is gone (nr_kdamonds rewritten)
            return False
        state = state_text.strip()
        pid = _pid(pid_text) if pid_text is not None else None
        if state == "on" and pid != handle.pid:
            log.warning(
                "kdamond %d now runs with pid %s, not damon-eval's pid %d: leaving it alone",
                handle.index,
                pid,
                handle.pid,
            )
            return False
        ours_running = state == "on"
        ops: list[Op] = [Write(f"{kd}/state", "off"), Read(f"{kd}/state")] if ours_running else []
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


def _with_filter_files(layout: SysfsLayout, filter_listing: Sequence[str]) -> SysfsLayout:
    return SysfsLayout(
        kdamond_files=layout.kdamond_files,
        context_files=layout.context_files,
        interval_files=layout.interval_files,
        scheme_files=layout.scheme_files,
        quota_files=layout.quota_files,
        stats_files=layout.stats_files,
        filter_files=frozenset(filter_listing),
        tried_region_files=layout.tried_region_files,
    )


def _pid(text: str) -> int | None:
    try:
        value = int(text.strip())
    except ValueError:
        return None
    return value if value > 0 else None
