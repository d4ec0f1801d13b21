"""A fake kernel in a temporary directory: DAMON sysfs, legacy debugfs, tracefs, /proc bits.

Built on :class:`damon_eval.fs.LocalFs` with a write hook, so the code under
test runs its real file I/O.  Behaviour copied from the kernel:

* sysfs: writing ``nr_*`` files (re)creates the numbered directories with their
  default files; ``nr_kdamonds`` fails with EBUSY while any kdamond runs;
  ``state`` takes ``on``/``off``/``commit``/``update_schemes_stats``/
  ``update_schemes_tried_regions``/... and always reads ``on`` or ``off``;
  ``on`` validates the parameters (EINVAL) and makes a ``pid`` appear;
  bool files read back ``Y``/``N``;
* debugfs: every write fails with EBUSY while ``monitor_on`` is ``on``; the
  seed variant takes the 7-field schemes form with 32-bit sizes, the mainline
  variant the 18-field form;
* tracefs: ``mkdir instances/<name>`` creates the instance files,
  ``rmdir`` removes the instance.

A failed write leaves the file as it was (the kernel never stores a rejected
value).  ``fs.round_trips`` counts ``execute`` calls.
"""

from __future__ import annotations

import errno
import itertools
import os
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from damon_eval.errors import FsError
from damon_eval.fs import LocalFs, Op, RemoveDir, Write

ADMIN = "/sys/kernel/mm/damon/admin"
DEBUGFS = "/sys/kernel/debug/damon"
TRACEFS = "/sys/kernel/tracing"
ULONG_MAX = 2**64 - 1
UINT_MAX = 2**32 - 1

FULL_SYSFS = frozenset(
    {
        "avail_operations",
        "addr_unit",
        "refresh_ms",
        "intervals_goal",
        "apply_interval_us",
        "target_nid",
        "dests",
        "filters",
        "core_filters",
        "filter_allow",
        "tried_regions",
        "total_bytes",
        "quota_goals",
        "effective_bytes",
        "sz_ops_filter_passed",
    }
)
"""Files of a 6.18-like kernel (like the development host's)."""

SYSFS_5_18: frozenset[str] = frozenset()
"""The first sysfs kernels: no avail_operations, filters, tried regions..."""

SYSFS_6_6 = frozenset({"avail_operations", "filters", "tried_regions", "total_bytes"})

CLOCKS = ("local", "global", "counter", "uptime", "perf", "mono", "mono_raw", "boot")
STATE_COMMANDS = {
    "on",
    "off",
    "commit",
    "update_schemes_stats",
    "update_schemes_tried_regions",
    "update_schemes_tried_bytes",
    "clear_schemes_tried_regions",
    "update_schemes_effective_quotas",
    "commit_schemes_quota_goals",
    "update_tuned_intervals",
}
ACTIONS = {
    "willneed",
    "cold",
    "pageout",
    "hugepage",
    "nohugepage",
    "lru_prio",
    "lru_deprio",
    "migrate_hot",
    "migrate_cold",
    "stat",
}

TriedOracle = Callable[[int, int, "FakeKernel"], Sequence[tuple[int, int, int, int]]]


def _fail(code: int) -> OSError:
    return OSError(code, os.strerror(code))


@dataclass
class FakeKernelFs(LocalFs):
    """LocalFs whose rejected writes leave the old content, with tracefs-style rmdir."""

    rmtree_prefixes: tuple[str, ...] = ()
    round_trips: int = 0

    def execute(self, ops: Sequence[Op]) -> list[Any]:
        self.round_trips += 1
        return super().execute(ops)

    def _one(self, op: Op) -> Any:
        if isinstance(op, Write):
            target = self.host_path(op.path)
            old = target.read_bytes() if target.is_file() else None
            try:
                return super()._one(op)
            except FsError:
                if old is not None:
                    target.write_bytes(old)
                raise
        if isinstance(op, RemoveDir) and any(op.path.startswith(p) for p in self.rmtree_prefixes):
            target = self.host_path(op.path)
            if not target.is_dir():
                raise FsError(
                    f"cannot remove directory {op.path}", path=op.path, errno=errno.ENOENT
                )
            shutil.rmtree(target)
            return None
        return super()._one(op)


@dataclass
class FakeKernel:
    """The fake machine.  Use :attr:`fs` as the FileSystem under test."""

    root: Path
    sysfs: frozenset[str] | None = FULL_SYSFS
    debugfs: str | None = None  # None, "seed", "mainline" or "deprecated" (6.9+ names)
    tracefs: bool = True
    avail_operations: tuple[str, ...] = ("vaddr", "fvaddr", "paddr")
    live_pids: set[int] | None = None
    osrelease: str = "6.18.0-fake"
    boot_id: str = "11111111-2222-3333-4444-555555555555"
    iomem: str = (
        "00000000-00000fff : Reserved\n"
        "00001000-0009fbff : System RAM\n"
        "000f0000-000fffff : System ROM\n"
        "00100000-7ffdffff : System RAM\n"
        "  01000000-01ffffff : Kernel code\n"
        "100000000-17fffffff : System RAM\n"
    )
    tried_oracle: TriedOracle | None = None
    init_regions_by_id: bool = False
    debugfs_schemes_form: int | None = None  # override the variant's schemes parser
    deny_writes: bool = False
    writes: list[tuple[str, str]] = field(default_factory=list)
    readback_overrides: dict[str, str] = field(default_factory=dict)
    fs: FakeKernelFs = field(init=False)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self._pids = itertools.count(1000)
        self._stat_calls: dict[tuple[int, int], int] = {}
        self._current_state: dict[int, str] = {}
        self._debugfs_schemes: list[list[int]] = []
        self._debugfs_on = False
        self.fs = FakeKernelFs(
            root=self.root,
            write_hook=self._hook,
            rmtree_prefixes=(f"{TRACEFS}/instances/",),
        )
        self._file("/proc/sys/kernel/osrelease", self.osrelease)
        self._file("/proc/sys/kernel/random/boot_id", self.boot_id)
        self._file("/proc/iomem", self.iomem)
        if self.sysfs is not None:
            self._file(f"{ADMIN}/kdamonds/nr_kdamonds", "0")
        if self.debugfs is not None:
            self._make_debugfs()
        if self.tracefs:
            self._file(f"{TRACEFS}/trace_clock", self._clock_text("local"))
            for event in ("damon_aggregated", "damos_before_apply"):
                self._file(f"{TRACEFS}/events/damon/{event}/enable", "0")
                self._file(f"{TRACEFS}/events/damon/{event}/format", f"name: {event}")
            self._file(f"{TRACEFS}/events/damon/enable", "0")
            self.host(f"{TRACEFS}/instances").mkdir(parents=True, exist_ok=True)

    @property
    def sysfs_files(self) -> frozenset[str]:
        """The optional sysfs files this fake kernel has (none without sysfs)."""
        return self.sysfs or frozenset()

    # Tree helpers ---------------------------------------------------------------

    def host(self, path: str) -> Path:
        return self.root / PurePosixPath(path).relative_to("/")

    def _file(self, path: str, value: str) -> None:
        target = self.host(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(value + "\n")

    def read(self, path: str) -> str:
        return self.host(path).read_text().strip()

    def _int(self, path: str) -> int:
        return int(self.read(path))

    def _store(self, path: str, value: str) -> None:
        self.host(path).write_text(value + "\n")

    @staticmethod
    def _clock_text(current: str) -> str:
        return " ".join(f"[{c}]" if c == current else c for c in CLOCKS)

    # The hook -------------------------------------------------------------------

    def _hook(self, path: str, value: str) -> None:
        self.writes.append((path, value))
        if self.deny_writes:
            raise _fail(errno.EACCES)
        value = value.strip()
        if path.startswith(ADMIN + "/"):
            self._sysfs_write(path, value)
        elif path.startswith(DEBUGFS + "/"):
            self._debugfs_write(path, value)
        elif path.startswith(TRACEFS + "/"):
            self._tracefs_write(path, value)
        for suffix, replacement in self.readback_overrides.items():
            if path.endswith(suffix):
                self._store(path, replacement)

    # sysfs --------------------------------------------------------------------------

    def kdamond_dir(self, index: int) -> str:
        return f"{ADMIN}/kdamonds/{index}"

    def nr_kdamonds(self) -> int:
        return self._int(f"{ADMIN}/kdamonds/nr_kdamonds")

    def state(self, index: int) -> str:
        return self.read(f"{self.kdamond_dir(index)}/state")

    def _any_running(self) -> bool:
        return any(self.state(i) == "on" for i in range(self.nr_kdamonds()))

    @staticmethod
    def _parse_nr(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise _fail(errno.EINVAL) from None
        if number < 0:
            raise _fail(errno.EINVAL)
        return number

    def _renumber(self, parent: str, count: int, make: Callable[[str], None]) -> None:
        base = self.host(parent)
        for child in base.iterdir():
            if child.is_dir() and child.name.isdigit():
                shutil.rmtree(child)
        for index in range(count):
            make(f"{parent}/{index}")

    def _sysfs_write(self, path: str, value: str) -> None:
        name = PurePosixPath(path).name
        if path == f"{ADMIN}/kdamonds/nr_kdamonds":
            count = self._parse_nr(value)
            # The old count is still on disk only through our bookkeeping.
            running = [
                i
                for i in range(self._existing_kdamonds())
                if self.read(f"{self.kdamond_dir(i)}/state") == "on"
            ]
            if running:
                raise _fail(errno.EBUSY)
            self._renumber(f"{ADMIN}/kdamonds", count, self._make_kdamond)
        elif name == "nr_contexts":
            count = self._parse_nr(value)
            if count > 1:
                raise _fail(errno.EINVAL)
            self._renumber(str(PurePosixPath(path).parent), count, self._make_context)
        elif name == "nr_targets":
            self._renumber(
                str(PurePosixPath(path).parent), self._parse_nr(value), self._make_target
            )
        elif name == "nr_regions" and PurePosixPath(path).parent.name == "regions":
            self._renumber(
                str(PurePosixPath(path).parent), self._parse_nr(value), self._make_region
            )
        elif name == "nr_schemes":
            self._renumber(
                str(PurePosixPath(path).parent), self._parse_nr(value), self._make_scheme
            )
        elif name == "nr_filters":
            self._renumber(
                str(PurePosixPath(path).parent), self._parse_nr(value), self._make_filter
            )
        elif name == "state" and PurePosixPath(path).parent.parent.name == "kdamonds":
            self._state_write(int(PurePosixPath(path).parent.name), value)
        elif name in ("matching", "allow"):
            if value not in ("Y", "N", "y", "n", "1", "0"):
                raise _fail(errno.EINVAL)
            self._store(path, "Y" if value in ("Y", "y", "1") else "N")
        elif name == "operations":
            if value not in ("vaddr", "fvaddr", "paddr"):
                raise _fail(errno.EINVAL)
        elif name == "action":
            if value not in ACTIONS:
                raise _fail(errno.EINVAL)
        elif name == "metric":
            if value not in ("none", "free_mem_rate"):
                raise _fail(errno.EINVAL)
        elif name in ("type", "memcg_path"):
            pass
        else:
            try:
                int(value)
            except ValueError:
                raise _fail(errno.EINVAL) from None

    def _existing_kdamonds(self) -> int:
        base = self.host(f"{ADMIN}/kdamonds")
        return sum(1 for c in base.iterdir() if c.is_dir() and c.name.isdigit())

    def _make_kdamond(self, path: str) -> None:
        self._file(f"{path}/state", "off")
        self._file(f"{path}/pid", "-1")
        if "refresh_ms" in self.sysfs_files:
            self._file(f"{path}/refresh_ms", "0")
        self._file(f"{path}/contexts/nr_contexts", "0")

    def _make_context(self, path: str) -> None:
        if "avail_operations" in self.sysfs_files:
            self._file(f"{path}/avail_operations", " ".join(self.avail_operations))
        if "addr_unit" in self.sysfs_files:
            self._file(f"{path}/addr_unit", "1")
        self._file(f"{path}/operations", "vaddr")
        intervals = f"{path}/monitoring_attrs/intervals"
        self._file(f"{intervals}/sample_us", "5000")
        self._file(f"{intervals}/aggr_us", "100000")
        self._file(f"{intervals}/update_us", "1000000")
        if "intervals_goal" in self.sysfs_files:
            for name in ("access_bp", "aggrs", "min_sample_us", "max_sample_us"):
                self._file(f"{intervals}/intervals_goal/{name}", "0")
        self._file(f"{path}/monitoring_attrs/nr_regions/min", "10")
        self._file(f"{path}/monitoring_attrs/nr_regions/max", "1000")
        self._file(f"{path}/targets/nr_targets", "0")
        self._file(f"{path}/schemes/nr_schemes", "0")

    def _make_target(self, path: str) -> None:
        self._file(f"{path}/pid_target", "0")
        self._file(f"{path}/regions/nr_regions", "0")

    def _make_region(self, path: str) -> None:
        self._file(f"{path}/start", "0")
        self._file(f"{path}/end", "0")

    def _make_scheme(self, path: str) -> None:
        self._file(f"{path}/action", "stat")
        if "apply_interval_us" in self.sysfs_files:
            self._file(f"{path}/apply_interval_us", "0")
        if "target_nid" in self.sysfs_files:
            self._file(f"{path}/target_nid", "-1")
        for what, high in (("sz", ULONG_MAX), ("nr_accesses", UINT_MAX), ("age", UINT_MAX)):
            self._file(f"{path}/access_pattern/{what}/min", "0")
            self._file(f"{path}/access_pattern/{what}/max", str(high))
        for name in ("ms", "bytes", "reset_interval_ms"):
            self._file(f"{path}/quotas/{name}", "0")
        if "effective_bytes" in self.sysfs_files:
            self._file(f"{path}/quotas/effective_bytes", "0")
        if "quota_goals" in self.sysfs_files:
            self._file(f"{path}/quotas/goals/nr_goals", "0")
        for name in ("sz_permil", "nr_accesses_permil", "age_permil"):
            self._file(f"{path}/quotas/weights/{name}", "0")
        self._file(f"{path}/watermarks/metric", "none")
        for name in ("interval_us", "high", "mid", "low"):
            self._file(f"{path}/watermarks/{name}", "0")
        filter_dirs = []
        if "filters" in self.sysfs_files:
            filter_dirs.append("filters")
        if "core_filters" in self.sysfs_files:
            filter_dirs += ["core_filters", "ops_filters"]
        for name in filter_dirs:
            self._file(f"{path}/{name}/nr_filters", "0")
        if "dests" in self.sysfs_files:
            self._file(f"{path}/dests/nr_dests", "0")
        stats = ["nr_tried", "sz_tried", "nr_applied", "sz_applied", "qt_exceeds"]
        if "sz_ops_filter_passed" in self.sysfs_files:
            stats.append("sz_ops_filter_passed")
        for name in stats:
            self._file(f"{path}/stats/{name}", "0")
        if "tried_regions" in self.sysfs_files:
            self.host(f"{path}/tried_regions").mkdir(parents=True, exist_ok=True)
            if "total_bytes" in self.sysfs_files:
                self._file(f"{path}/tried_regions/total_bytes", "0")

    def _make_filter(self, path: str) -> None:
        self._file(f"{path}/type", "anon")
        self._file(f"{path}/matching", "N")
        if "filter_allow" in self.sysfs_files:
            self._file(f"{path}/allow", "N")
        self._file(f"{path}/memcg_path", "")
        for name in ("addr_start", "addr_end", "damon_target_idx", "min", "max"):
            self._file(f"{path}/{name}", "0")

    # state commands ------------------------------------------------------------

    def context_dir(self, index: int) -> str:
        return f"{self.kdamond_dir(index)}/contexts/0"

    def nr_schemes(self, index: int) -> int:
        return self._int(f"{self.context_dir(index)}/schemes/nr_schemes")

    def _validate(self, index: int) -> None:
        """What the kernel checks at 'on' and 'commit'."""
        kd = self.kdamond_dir(index)
        if self._int(f"{kd}/contexts/nr_contexts") != 1:
            raise _fail(errno.EINVAL)
        ctx = self.context_dir(index)
        ops = self.read(f"{ctx}/operations")
        if ops not in self.avail_operations:
            raise _fail(errno.EINVAL)
        intervals = f"{ctx}/monitoring_attrs/intervals"
        if self._int(f"{intervals}/sample_us") > self._int(f"{intervals}/aggr_us"):
            raise _fail(errno.EINVAL)
        low = self._int(f"{ctx}/monitoring_attrs/nr_regions/min")
        high = self._int(f"{ctx}/monitoring_attrs/nr_regions/max")
        if low < 3 or low > high:
            raise _fail(errno.EINVAL)
        for t in range(self._int(f"{ctx}/targets/nr_targets")):
            target = f"{ctx}/targets/{t}"
            pid = self._int(f"{target}/pid_target")
            if (
                ops in ("vaddr", "fvaddr")
                and self.live_pids is not None
                and pid not in self.live_pids
            ):
                raise _fail(errno.EINVAL)
            previous_end = -1
            for r in range(self._int(f"{target}/regions/nr_regions")):
                start = self._int(f"{target}/regions/{r}/start")
                end = self._int(f"{target}/regions/{r}/end")
                if start >= end or start < previous_end:
                    raise _fail(errno.EINVAL)
                previous_end = end

    def _state_write(self, index: int, command: str) -> None:
        kd = self.kdamond_dir(index)
        state_path = f"{kd}/state"
        # The file holds the written command now; the kernel shows the state.
        current = self._current_state.get(index, "off")
        try:
            if command not in STATE_COMMANDS:
                raise _fail(errno.EINVAL)
            if command == "on":
                if current == "on":
                    raise _fail(errno.EBUSY)
                self._validate(index)
                self._current_state[index] = "on"
                self._store(f"{kd}/pid", str(next(self._pids)))
                for s in range(self.nr_schemes(index)):
                    for name in ("nr_tried", "sz_tried", "nr_applied", "sz_applied", "qt_exceeds"):
                        self._store(f"{self.context_dir(index)}/schemes/{s}/stats/{name}", "0")
            elif command == "off":
                if current != "on":
                    raise _fail(errno.EINVAL)
                self.stop_kdamond(index)
            elif current != "on":
                raise _fail(errno.EINVAL)
            elif command == "commit":
                self._validate(index)
            elif command == "update_schemes_stats":
                self._update_stats(index)
            elif command == "update_schemes_tried_regions":
                self._update_tried_regions(index)
            elif command == "clear_schemes_tried_regions":
                self._clear_tried_regions(index)
            elif command == "update_schemes_tried_bytes":
                self._update_tried_regions(index, bytes_only=True)
        finally:
            self._store(state_path, self._current_state.get(index, current))

    def stop_kdamond(self, index: int) -> None:
        """The kdamond stops (as after 'off', or when its target process exits)."""
        self._current_state[index] = "off"
        self._store(f"{self.kdamond_dir(index)}/state", "off")
        self._store(f"{self.kdamond_dir(index)}/pid", "-1")

    def _update_stats(self, index: int) -> None:
        for s in range(self.nr_schemes(index)):
            calls = self._stat_calls.get((index, s), 0) + 1
            self._stat_calls[(index, s)] = calls
            stats = f"{self.context_dir(index)}/schemes/{s}/stats"
            values = {
                "nr_tried": 10 * calls,
                "sz_tried": 40960 * calls,
                "nr_applied": 5 * calls,
                "sz_applied": 20480 * calls,
                "qt_exceeds": 0,
            }
            for name, value in values.items():
                self._store(f"{stats}/{name}", str(value))

    def _default_tried(self, index: int, scheme: int) -> list[tuple[int, int, int, int]]:
        ctx = self.context_dir(index)
        regions = []
        for t in range(self._int(f"{ctx}/targets/nr_targets")):
            target = f"{ctx}/targets/{t}"
            nr = self._int(f"{target}/regions/nr_regions")
            if nr == 0:
                regions.append(
                    (0x7F0000000000 + t * 0x100000, 0x7F0000000000 + t * 0x100000 + 0x80000, 1, 3)
                )
            for r in range(nr):
                regions.append(
                    (
                        self._int(f"{target}/regions/{r}/start"),
                        self._int(f"{target}/regions/{r}/end"),
                        0,
                        5,
                    )
                )
        return regions

    def _update_tried_regions(self, index: int, *, bytes_only: bool = False) -> None:
        if "tried_regions" not in self.sysfs_files:
            raise _fail(errno.EINVAL)
        for s in range(self.nr_schemes(index)):
            tried = f"{self.context_dir(index)}/schemes/{s}/tried_regions"
            oracle = self.tried_oracle or (lambda i, j, kernel: kernel._default_tried(i, j))
            regions = list(oracle(index, s, self))
            if not bytes_only:
                self._renumber(tried, len(regions), lambda p: None)
                for r, (start, end, nr_accesses, age) in enumerate(regions):
                    self._file(f"{tried}/{r}/start", str(start))
                    self._file(f"{tried}/{r}/end", str(end))
                    self._file(f"{tried}/{r}/nr_accesses", str(nr_accesses))
                    self._file(f"{tried}/{r}/age", str(age))
                    if "sz_ops_filter_passed" in self.sysfs_files:
                        self._file(f"{tried}/{r}/sz_filter_passed", "0")
            if "total_bytes" in self.sysfs_files:
                self._store(f"{tried}/total_bytes", str(sum(e - b for b, e, _, _ in regions)))

    def _clear_tried_regions(self, index: int) -> None:
        for s in range(self.nr_schemes(index)):
            tried = f"{self.context_dir(index)}/schemes/{s}/tried_regions"
            self._renumber(tried, 0, lambda p: None)

    def seed_running_kdamond(self, *, operations: str = "paddr", pid: int = 77) -> None:
        """A foreign kdamond that is already running (like the development host's)."""
        count = self.nr_kdamonds()
        self._store(f"{ADMIN}/kdamonds/nr_kdamonds", str(count + 1))
        kd = self.kdamond_dir(count)
        self._make_kdamond(kd)
        self._make_context(f"{kd}/contexts/0")
        self._store(f"{kd}/contexts/nr_contexts", "1")
        self._store(f"{kd}/contexts/0/operations", operations)
        self._store(f"{kd}/contexts/0/schemes/nr_schemes", "1")
        self._make_scheme(f"{kd}/contexts/0/schemes/0")
        self._store(f"{kd}/contexts/0/schemes/0/action", "pageout")
        self._current_state[count] = "on"
        self._store(f"{kd}/state", "on")
        self._store(f"{kd}/pid", str(pid))

    def seed_idle_kdamond(self) -> None:
        """A configured but idle kdamond (e.g. left by a crashed run)."""
        count = self.nr_kdamonds()
        self._store(f"{ADMIN}/kdamonds/nr_kdamonds", str(count + 1))
        self._make_kdamond(self.kdamond_dir(count))

    def snapshot(self, base: str = ADMIN) -> dict[str, str]:
        """Every file below ``base`` and its content (to prove nothing changed)."""
        root = self.host(base)
        return {
            str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()
        }

    # debugfs ------------------------------------------------------------------------

    def _make_debugfs(self) -> None:
        self._file(f"{DEBUGFS}/attrs", "5000 100000 1000000 10 1000")
        self._file(f"{DEBUGFS}/{self.monitor_name}", "off")
        if self.debugfs == "deprecated":
            self._file(f"{DEBUGFS}/DEPRECATED", "")
        self._file(f"{DEBUGFS}/schemes", "")
        if self.debugfs == "seed":
            self._file(f"{DEBUGFS}/pids", "")
            self._file(f"{DEBUGFS}/record", "1048576 /damon.data")
        else:
            self._file(f"{DEBUGFS}/target_ids", "")
            self._file(f"{DEBUGFS}/init_regions", "")
            self._file(f"{DEBUGFS}/kdamond_pid", "none")
            self._file(f"{DEBUGFS}/mk_contexts", "")
            self._file(f"{DEBUGFS}/rm_contexts", "")

    @property
    def monitor_name(self) -> str:
        return "monitor_on_DEPRECATED" if self.debugfs == "deprecated" else "monitor_on"

    @property
    def schemes_form(self) -> int:
        if self.debugfs_schemes_form is not None:
            return self.debugfs_schemes_form
        return 7 if self.debugfs == "seed" else 18

    def _debugfs_write(self, path: str, value: str) -> None:
        name = PurePosixPath(path).name
        if self._debugfs_on and name != self.monitor_name:
            raise _fail(errno.EBUSY)
        if name == "attrs":
            numbers = value.split()
            if len(numbers) != 5 or not all(n.isdigit() for n in numbers):
                raise _fail(errno.EINVAL)
            self._store(path, " ".join(numbers))
        elif name in ("pids", "target_ids"):
            if value == "paddr" and name == "target_ids":
                self._store(path, "42")
                self._store(f"{DEBUGFS}/init_regions", "")
                return
            if not all(n.isdigit() for n in value.split()):
                raise _fail(errno.EINVAL)
            self._store(path, " ".join(value.split()))
        elif name == "init_regions":
            ids = [int(x) for x in self.read(f"{DEBUGFS}/target_ids").split()]
            lines = []
            for line in value.splitlines():
                parts = line.split()
                if len(parts) != 3:
                    raise _fail(errno.EINVAL)
                key = int(parts[0])
                valid = key in ids if self.init_regions_by_id else 0 <= key < len(ids)
                if not valid:
                    raise _fail(errno.EINVAL)
                lines.append(" ".join(parts))
            self._store(path, "\n".join(lines))
        elif name == "schemes":
            self._debugfs_schemes_write(path, value)
        elif name == "record":
            parts = value.split()
            if len(parts) != 2 or not parts[0].isdigit():
                raise _fail(errno.EINVAL)
            self._store(path, " ".join(parts))
        elif name == self.monitor_name:
            if value == "on":
                if self._debugfs_on:
                    raise _fail(errno.EBUSY)
                target_file = "pids" if self.debugfs == "seed" else "target_ids"
                if not self.read(f"{DEBUGFS}/{target_file}"):
                    raise _fail(errno.EINVAL)
                self._debugfs_on = True
                if self.debugfs != "seed":
                    self._store(f"{DEBUGFS}/kdamond_pid", str(next(self._pids)))
            elif value == "off":
                if not self._debugfs_on:
                    raise _fail(errno.EINVAL)
                self.debugfs_stop()
                return
            else:
                raise _fail(errno.EINVAL)
            self._store(path, "on" if self._debugfs_on else "off")
        else:
            raise _fail(errno.EPERM)

    def debugfs_stop(self) -> None:
        self._debugfs_on = False
        self._store(f"{DEBUGFS}/{self.monitor_name}", "off")
        if self.debugfs != "seed":
            self._store(f"{DEBUGFS}/kdamond_pid", "none")

    def seed_debugfs_running(self, pid: int = 4242) -> None:
        self._debugfs_on = True
        self._store(f"{DEBUGFS}/{self.monitor_name}", "on")
        if self.debugfs != "seed":
            self._store(f"{DEBUGFS}/kdamond_pid", str(pid))

    def _debugfs_schemes_write(self, path: str, value: str) -> None:
        form = self.schemes_form
        try:
            numbers = [int(x) for x in value.split()]
        except ValueError:
            raise _fail(errno.EINVAL) from None
        schemes = []
        for i in range(0, len(numbers) - form + 1, form):
            fields = numbers[i : i + form]
            if not 0 <= fields[6] <= 5:
                raise _fail(errno.EINVAL)
            if form == 7:  # %u: 32-bit sizes
                fields = [fields[0] & UINT_MAX, fields[1] & UINT_MAX, *fields[2:]]
            schemes.append(fields)
        self._debugfs_schemes = schemes
        stats = "0 0" if form == 7 else "0 0 0 0 0"
        self._store(path, "\n".join(" ".join(map(str, s)) + " " + stats for s in schemes))

    # tracefs ----------------------------------------------------------------------------

    def _tracefs_write(self, path: str, value: str) -> None:
        relative = PurePosixPath(path).relative_to(TRACEFS)
        parts = relative.parts
        if len(parts) == 2 and parts[0] == "instances":  # mkdir
            self._make_instance(path)
        elif parts[-1] == "trace_clock":
            if value not in CLOCKS:
                raise _fail(errno.EINVAL)
            self._store(path, self._clock_text(value))
        elif parts[-1] == "enable" and value not in ("0", "1"):
            raise _fail(errno.EINVAL)

    def _make_instance(self, path: str) -> None:
        self._file(f"{path}/trace_clock", self._clock_text("local"))
        self._file(f"{path}/buffer_size_kb", "7")
        self._file(f"{path}/tracing_on", "1")
        self.host(f"{path}/trace_pipe").write_text("")
        for event in ("damon_aggregated", "damos_before_apply"):
            self._file(f"{path}/events/damon/{event}/enable", "0")

    def instance(self, name: str = "damon-eval") -> str:
        return f"{TRACEFS}/instances/{name}"

    def emit_trace(self, lines: Iterable[str], name: str = "damon-eval") -> None:
        """Append lines to an instance's trace_pipe, as the kernel would."""
        with self.host(f"{self.instance(name)}/trace_pipe").open("a") as pipe:
            for line in lines:
                pipe.write(line + "\n")
