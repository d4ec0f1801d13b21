"""The legacy DAMON debugfs interface (``<debugfs>/damon/``).

Two generations are supported:

* the seed's kernels (DAMON v18 + the DAMOS RFC): ``attrs``, ``pids``,
  ``record`` (``<rbuf_len> <path>``, in-kernel recording), ``schemes`` in the
  7-field form ``<min sz> <max sz> <min nr_accesses> <max nr_accesses> <min age>
  <max age> <action number>``, ``monitor_on``;
* mainline 5.15-6.8 (``CONFIG_DAMON_DBGFS``): ``target_ids``, ``init_regions``,
  ``kdamond_pid`` and the 18-field ``schemes`` form (pattern, action, quotas,
  prioritization weights, watermarks).

Which ``schemes`` form the kernel takes is decided by reading it back: a
kernel parsing a different form either rejects the write or keeps no schemes.
Every write while ``monitor_on`` is ``on`` fails with EBUSY; the back end
refuses to start when monitoring is already on, since it cannot be ours.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Sequence

from damon_eval.damon.backend import (
    DamonBackend,
    DebugfsRecord,
    Features,
    KdamondHandle,
    KdamondStatus,
    SchemeStats,
    TriedRegions,
)
from damon_eval.damon.errors import (
    DamonBusyError,
    DamonError,
    DamonReadbackError,
    DamonUnsupportedError,
    translate_fs_error,
)
from damon_eval.damon.model import UINT_MAX, Context, Kdamond, Scheme
from damon_eval.damon.probe import TargetProbe
from damon_eval.errors import FsError
from damon_eval.fs import FileSystem, ListDir, ListDirIfExists, Op, Read, ReadIfExists, Write

log = logging.getLogger(__name__)

DEBUGFS_DAMON = "/sys/kernel/debug/damon"
MONITOR_ON = "monitor_on"
# 6.9 renamed it (with a DEPRECATED notice file) so that users notice the deprecation.
MONITOR_ON_DEPRECATED = "monitor_on_DEPRECATED"

ACTION_NUMBERS = {"willneed": 0, "cold": 1, "pageout": 2, "hugepage": 3, "nohugepage": 4, "stat": 5}
WATERMARK_METRIC_NUMBERS = {"none": 0, "free_mem_rate": 1}
SEED_FORM = 7
MAINLINE_FORM = 18
PADDR_TARGET_ID = 42
"""The id 5.16-5.17 kernels give the paddr target ("meaningless, set just for fun")."""


def scheme_fields(scheme: Scheme, form: int, *, zero_means_unlimited: bool = False) -> list[int]:
    """The numbers of one ``schemes`` line in the 7- or 18-field form.

    ``zero_means_unlimited`` encodes an unbounded maximum size as 0, as the
    seed-era kernels (32-bit sizes, ``0`` = no limit) expect.
    """
    if scheme.action not in ACTION_NUMBERS:
        raise DamonUnsupportedError(
            f"action {scheme.action!r} has no debugfs number; valid: {', '.join(ACTION_NUMBERS)}"
        )
    pattern = scheme.access_pattern
    sz_max = pattern.sz_max
    if zero_means_unlimited:
        if pattern.sz_min > UINT_MAX:
            raise DamonUnsupportedError(
                f"minimum size {pattern.sz_min} does not fit the seed kernel's 32-bit sizes"
            )
        sz_max = 0 if sz_max > UINT_MAX else sz_max
    fields = [
        pattern.sz_min,
        sz_max,
        pattern.nr_accesses_min,
        pattern.nr_accesses_max,
        pattern.age_min,
        pattern.age_max,
        ACTION_NUMBERS[scheme.action],
    ]
    if form == SEED_FORM:
        if scheme.quotas.active or scheme.watermarks.metric != "none":
            raise DamonUnsupportedError(
                "this kernel's debugfs schemes take 7 fields: quotas and watermarks need 5.16+"
            )
        return fields
    quotas, marks = scheme.quotas, scheme.watermarks
    return [
        *fields,
        quotas.ms,
        quotas.bytes,
        quotas.reset_interval_ms,
        quotas.weight_sz_permil,
        quotas.weight_nr_accesses_permil,
        quotas.weight_age_permil,
        WATERMARK_METRIC_NUMBERS[marks.metric],
        marks.interval_us,
        marks.high,
        marks.mid,
        marks.low,
    ]


def parse_schemes_file(text: str) -> list[list[int]]:
    """The numbers of each line of a ``schemes`` read (configuration then statistics)."""
    rows = []
    for line in text.splitlines():
        if line.strip():
            try:
                rows.append([int(x) for x in line.split()])
            except ValueError:
                raise DamonError(f"unexpected debugfs schemes line {line!r}") from None
    return rows


class DebugfsBackend(DamonBackend):
    """Drives ``<debugfs>/damon`` through a :class:`~damon_eval.fs.FileSystem`."""

    interface = "debugfs"

    def __init__(self, fs: FileSystem, damon_dir: str = DEBUGFS_DAMON):
        super().__init__(fs)
        self.damon_dir = damon_dir
        self._files: frozenset[str] | None = None
        self.schemes_form: int | None = None
        self._seed_encoding = False
        self._target_ids: list[int] = []
        self._features: Features | None = None

    def path(self, name: str) -> str:
        return f"{self.damon_dir}/{name}"

    def files(self) -> frozenset[str]:
        """Names in the damon debugfs directory (listed once)."""
        if self._files is None:
            (listing,) = self.run([ListDir(self.damon_dir)], f"listing {self.damon_dir}")
            self._files = frozenset(listing)
        return self._files

    @property
    def monitor_file(self) -> str:
        """``monitor_on``; 6.9+ kernels renamed it ``monitor_on_DEPRECATED``."""
        return MONITOR_ON_DEPRECATED if MONITOR_ON_DEPRECATED in self.files() else MONITOR_ON

    @property
    def targets_file(self) -> str:
        return "target_ids" if "target_ids" in self.files() else "pids"

    def probe_ops(self) -> list[Op]:
        return [
            ListDirIfExists(self.damon_dir),
            ReadIfExists(self.path(MONITOR_ON)),
            ReadIfExists(self.path(MONITOR_ON_DEPRECATED)),
            ReadIfExists(self.path("kdamond_pid")),
        ]

    def present_in(self, probe: TargetProbe) -> bool:
        listing = probe.get(ListDirIfExists(self.damon_dir)) or ()
        return MONITOR_ON in listing or MONITOR_ON_DEPRECATED in listing

    def adopt(self, probe: TargetProbe) -> None:
        listing = probe.get(ListDirIfExists(self.damon_dir))
        if listing is not None:
            self._files = frozenset(listing)

    def _probed_state(self, probe: TargetProbe) -> tuple[str, int | None]:
        state = probe.get(ReadIfExists(self.path(MONITOR_ON)))
        if state is None:
            state = probe.get(ReadIfExists(self.path(MONITOR_ON_DEPRECATED)))
        if state is None:
            return self._read_state()
        pid = probe.get(ReadIfExists(self.path("kdamond_pid")))
        return state.strip(), _pid(pid) if pid is not None else None

    def _state_ops(self) -> list[Op]:
        ops: list[Op] = [Read(self.path(self.monitor_file))]
        if "kdamond_pid" in self.files():
            ops.append(Read(self.path("kdamond_pid")))
        return ops

    def _read_state(self) -> tuple[str, int | None]:
        values = self.run(self._state_ops(), f"reading {self.path(self.monitor_file)}")
        pid = _pid(values[1]) if len(values) > 1 else None
        return values[0].strip(), pid

    def kdamonds(self) -> list[KdamondStatus]:
        state, pid = self._read_state()
        return [KdamondStatus(index=0, state=state, pid=pid)]

    def features(self, *, refresh: bool = False) -> Features:
        if self._features is not None and not refresh:
            return self._features
        probe = self.probe()
        files = self.files()
        operations = ("vaddr", "paddr") if "init_regions" in files else ("vaddr",)
        notes = []
        if "record" in files:
            notes.append("in-kernel recording ('record' file) present: a seed-era kernel")
        self._features = Features(
            interface=self.interface,
            root=self.damon_dir,
            kernel_release=probe.kernel_release,
            operations=operations,
            scheme_actions=tuple(ACTION_NUMBERS) if "schemes" in files else (),
            state_commands=("on", "off"),
            tracefs=probe.tracefs,
            tracepoints=probe.tracepoints,
            capabilities=tuple(sorted(files)),
            notes=tuple(notes),
        )
        return self._features

    # Starting ----------------------------------------------------------------

    def _check_supported(self, context: Context, record: DebugfsRecord | None) -> None:
        files = self.files()
        if context.operations == "fvaddr":
            raise DamonUnsupportedError("the debugfs interface has no fvaddr operations set")
        if context.operations == "paddr" and "init_regions" not in files:
            raise DamonUnsupportedError(
                "paddr monitoring through debugfs needs init_regions (Linux 5.16+)"
            )
        if any(t.regions for t in context.targets) and "init_regions" not in files:
            raise DamonUnsupportedError("explicit target regions need init_regions (Linux 5.16+)")
        if context.schemes and "schemes" not in files:
            raise DamonUnsupportedError(f"no {self.path('schemes')}: this kernel has no DAMOS")
        for index, scheme in enumerate(context.schemes):
            if scheme.filters:
                raise DamonUnsupportedError(f"scheme {index}: debugfs has no DAMOS filters")
            if scheme.apply_interval_us:
                raise DamonUnsupportedError(f"scheme {index}: debugfs has no apply_interval_us")
        if record is not None and "record" not in files:
            raise DamonUnsupportedError(
                "in-kernel recording needs the seed kernels' debugfs 'record' file; "
                "record through tracefs instead"
            )

    def start(
        self,
        kdamond: Kdamond,
        *,
        record: DebugfsRecord | None = None,
        probe: TargetProbe | None = None,
    ) -> KdamondHandle:
        context = kdamond.context
        probe = self._fresh_probe(probe)
        self._check_supported(context, record)
        state, pid = self._probed_state(probe)
        if state == "on":
            raise DamonBusyError(
                f"DAMON debugfs monitoring is on ({self.path(self.monitor_file)}, kdamond pid "
                f"{pid if pid is not None else 'unknown'}) and was not started by this "
                "damon-eval session; debugfs refuses every write while it is on (EBUSY). Nothing "
                f"was changed; stop it first (echo off > {self.path(self.monitor_file)})"
            )
        self._write_attrs_and_targets(context)
        if "init_regions" in self.files():
            self._write_init_regions(context)
        self._write_record(record)
        if "schemes" in self.files():
            self._write_schemes(context)
        ops: list[Op] = [Write(self.path(self.monitor_file), "on"), *self._state_ops()]
        try:
            values = self.fs.execute(ops)
        except FsError as exc:
            if exc.errno == errno.EINVAL:
                raise DamonError(
                    f"the kernel refused to turn monitoring on ({exc}); do the target "
                    "processes still exist?"
                ) from exc
            raise translate_fs_error(exc, "turning DAMON debugfs monitoring on") from exc
        if values[1].strip() != "on":
            raise DamonError(
                f"monitoring did not start: {self.path(self.monitor_file)} reads {values[1]!r} "
                "right after 'on' (did the target process exit?)"
            )
        kdamond_pid = _pid(values[2]) if "kdamond_pid" in self.files() else None
        return KdamondHandle(
            interface=self.interface,
            index=0,
            pid=kdamond_pid or 0,
            boot_id=probe.boot_id,
        )

    def _write_checked(self, path: str, value: str, expected: str | None = None) -> str:
        read = self.run([Write(path, value), Read(path)], f"writing {path}")[1]
        if " ".join(read.split()) != " ".join(
            (expected if expected is not None else value).split()
        ):
            raise DamonReadbackError(
                f"{path}: wrote {value!r} but the kernel reads back {read.strip()!r}"
            )
        return read

    def _write_attrs_and_targets(self, context: Context) -> None:
        attrs = context.attrs
        attrs_text = (
            f"{attrs.sample_us} {attrs.aggr_us} {attrs.update_us} "
            f"{attrs.min_nr_regions} {attrs.max_nr_regions}"
        )
        target_path = self.path(self.targets_file)
        if context.operations == "paddr":
            target_text = "paddr"
        else:
            target_text = " ".join(str(t.pid) for t in context.targets)
        values = self.run(
            [
                Write(self.path("attrs"), attrs_text),
                Write(target_path, target_text),
                Read(self.path("attrs")),
                Read(target_path),
            ],
            f"writing {self.path('attrs')} and {target_path}",
        )
        if values[2].split() != attrs_text.split():
            raise DamonReadbackError(
                f"{self.path('attrs')}: wrote {attrs_text!r} but the kernel reads back "
                f"{values[2].strip()!r}"
            )
        read_targets = values[3].split()
        if context.operations == "paddr":
            ok = len(read_targets) == 1 and read_targets[0].isdigit()
        else:
            ok = read_targets == target_text.split()
        if not ok:
            raise DamonReadbackError(
                f"{target_path}: wrote {target_text!r} but the kernel reads back "
                f"{values[3].strip()!r}"
            )
        self._target_ids = [int(x) for x in read_targets if x.isdigit()]

    def _write_init_regions(self, context: Context) -> None:
        if not any(t.regions for t in context.targets):
            return
        path = self.path("init_regions")

        def text(ids: Sequence[int]) -> str:
            return "\n".join(
                f"{ids[i]} {r.start} {r.end}"
                for i, target in enumerate(context.targets)
                for r in target.regions
            )

        # 5.18+ names targets by index; 5.16-5.17 by id (pid, or 42 for paddr).
        by_index = text(range(len(context.targets)))
        try:
            self._write_checked(path, by_index)
            return
        except DamonError as exc:
            log.info("init_regions by target index failed (%s); trying target ids", exc)
        self._write_checked(path, text(self._target_ids))

    def _write_record(self, record: DebugfsRecord | None) -> None:
        if "record" not in self.files():
            return
        path = self.path("record")
        if record is not None:
            self._write_checked(path, f"{record.rbuf_len} {record.path}")
            return
        (current,) = self.run([Read(path)], f"reading {path}")
        if current.split()[:1] not in ([], ["0"]):
            # A leftover recording set-up would add its cost to this run: disable it.
            log.warning("disabling leftover in-kernel recording (%s)", current.strip())
            read = self.run([Write(path, "0 /dev/null"), Read(path)], f"writing {path}")[1]
            if read.split()[:1] != ["0"]:
                raise DamonReadbackError(f"{path}: could not disable recording: {read.strip()!r}")

    def _write_schemes(self, context: Context) -> None:
        path = self.path("schemes")
        schemes = context.schemes
        if self.schemes_form is not None:
            forms = [self.schemes_form]
        elif "target_ids" in self.files():
            forms = [MAINLINE_FORM, SEED_FORM]
        else:
            forms = [SEED_FORM, MAINLINE_FORM]
        attempts = []
        for form in forms:
            for seed_encoding in (False, True) if form == SEED_FORM else (False,):
                lines = [
                    scheme_fields(s, form, zero_means_unlimited=seed_encoding) for s in schemes
                ]
                text = "\n".join(" ".join(str(n) for n in line) for line in lines)
                try:
                    read = self.run([Write(path, text), Read(path)], f"writing {path}")[1]
                except DamonBusyError:
                    raise
                except DamonError as exc:
                    attempts.append(f"{form} fields: {exc}")
                    continue
                rows = parse_schemes_file(read)
                if len(rows) != len(lines):
                    attempts.append(f"{form} fields: kernel kept {len(rows)} of {len(lines)}")
                    continue
                configured = [row[:form] for row in rows]
                if configured == lines:
                    self.schemes_form = form
                    self._seed_encoding = seed_encoding
                    return
                truncated = (
                    form == SEED_FORM and not seed_encoding and _sizes_truncated(lines, configured)
                )
                if truncated:
                    attempts.append("7 fields: sizes read back as 32-bit numbers")
                    continue
                raise DamonReadbackError(
                    f"{path}: wrote {text!r} but the kernel reads back {read.strip()!r}"
                )
        raise DamonError(
            f"{path}: the kernel accepted neither the seed's 7-field nor the 18-field schemes "
            f"form ({'; '.join(attempts)})"
        )

    # Running -------------------------------------------------------------------

    def commit(self, handle: KdamondHandle, kdamond: Kdamond) -> None:
        raise DamonUnsupportedError(
            "the debugfs interface cannot change a running kdamond (every write fails with "
            "EBUSY while monitor_on is on); stop and start again instead"
        )

    def scheme_stats(self, handle: KdamondHandle) -> tuple[SchemeStats, ...]:
        if "schemes" not in self.files():
            return ()
        (text,) = self.run([Read(self.path("schemes"))], f"reading {self.path('schemes')}")
        form = self.schemes_form or (MAINLINE_FORM if "target_ids" in self.files() else SEED_FORM)
        result = []
        for row in parse_schemes_file(text):
            stats = row[form:]
            if len(stats) >= 5:
                nr_tried, sz_tried, nr_applied, sz_applied, qt_exceeds = stats[:5]
                result.append(SchemeStats(nr_tried, sz_tried, nr_applied, sz_applied, qt_exceeds))
            elif len(stats) == 2:
                # Older kernels count the regions (and bytes) the scheme was applied to.
                result.append(SchemeStats(stats[0], stats[1], stats[0], stats[1], 0))
            else:
                result.append(SchemeStats(0, 0, 0, 0, 0, extra={"stats_unavailable": 1}))
        return tuple(result)

    def tried_regions(
        self, handle: KdamondHandle, scheme_indexes: Sequence[int] | None = None
    ) -> tuple[TriedRegions, ...]:
        raise DamonUnsupportedError("tried regions exist only in the sysfs interface (6.2+)")

    def state_of(self, handle: KdamondHandle) -> tuple[str, int | None]:
        return self._read_state()

    def is_running(self, handle: KdamondHandle) -> bool:
        state, pid = self._read_state()
        return state == "on" and (handle.pid == 0 or pid == handle.pid)

    def turn_off(self, handle: KdamondHandle) -> bool:
        state, pid = self._read_state()
        if state != "on":
            return False
        if handle.pid and pid != handle.pid:
            log.warning(
                "DAMON debugfs monitoring now runs kdamond %s, not damon-eval's %d: leaving it",
                pid,
                handle.pid,
            )
            return False
        try:
            self.run(
                [Write(self.path(self.monitor_file), "off")], "turning DAMON debugfs monitoring off"
            )
        except DamonError:
            if self._read_state()[0] != "on":
                return False
            raise
        return True


def _sizes_truncated(written: list[list[int]], read: list[list[int]]) -> bool:
    """Whether every size that differs reads back as its low 32 bits."""
    differs = False
    for w_row, r_row in zip(written, read, strict=True):
        for w, r in zip(w_row[:2], r_row[:2], strict=True):
            if w != r:
                if r != (w & UINT_MAX):
                    return False
                differs = True
        if w_row[2:] != r_row[2:]:
            return False
    return differs


def _pid(text: str) -> int | None:
    try:
        value = int(text.strip())
    except ValueError:
        return None
    return value if value > 0 else None
