"""Every file name of the DAMON sysfs interface, in one place.

What a kernel's kdamond, context and scheme directories contain
(:class:`SysfsLayout`), where each directory is (:class:`SysfsPaths`) and which
files a scheme or filter is written to (:func:`scheme_sysfs_files`).  The
staging, statistics and back-end modules take their names from here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from damon_eval.damon.model import Context, Filter, Scheme

SYSFS_ADMIN = "/sys/kernel/mm/damon/admin"

# Names the other modules use on their own (comparisons, listings, labels);
# paths are built by :class:`SysfsPaths`.
KDAMONDS = "kdamonds"
NR_KDAMONDS = "nr_kdamonds"
STATE = "state"
PID = "pid"
CONTEXTS = "contexts"
NR_CONTEXTS = "nr_contexts"
OPERATIONS = "operations"
AVAIL_OPERATIONS = "avail_operations"
MONITORING_ATTRS = "monitoring_attrs"
INTERVALS = "intervals"
TARGETS = "targets"
NR_TARGETS = "nr_targets"
PID_TARGET = "pid_target"
REGIONS = "regions"
NR_REGIONS = "nr_regions"
SCHEMES = "schemes"
NR_SCHEMES = "nr_schemes"
APPLY_INTERVAL_US = "apply_interval_us"
QUOTAS = "quotas"
STATS = "stats"
FILTERS = "filters"
CORE_FILTERS = "core_filters"
OPS_FILTERS = "ops_filters"
NR_FILTERS = "nr_filters"
ALLOW = "allow"
TRIED_REGIONS = "tried_regions"
TOTAL_BYTES = "total_bytes"
SZ_FILTER_PASSED = "sz_filter_passed"
SZ_OPS_FILTER_PASSED = "sz_ops_filter_passed"

STATS_FILES = ("nr_tried", "sz_tried", "nr_applied", "sz_applied", "qt_exceeds")
OPTIONAL_STATS_FILES = (SZ_OPS_FILTER_PASSED, "nr_snapshots", "max_nr_snapshots")
TRIED_REGION_FILES = ("start", "end", "nr_accesses", "age")
"""The files of one tried region (``sz_filter_passed`` besides on 6.14+)."""
BASE_ACTIONS = ("willneed", "cold", "pageout", "hugepage", "nohugepage", "stat")
SPECULATIVE_KDAMONDS = 4
"""Kdamonds whose state the first batch reads before it knows ``nr_kdamonds``."""


@dataclass(frozen=True, slots=True)
class SysfsPaths:
    """Where a kdamond's directories are below ``<admin>/kdamonds``."""

    admin: str = SYSFS_ADMIN

    @property
    def kdamonds_dir(self) -> str:
        return f"{self.admin}/{KDAMONDS}"

    @property
    def nr_kdamonds(self) -> str:
        return f"{self.kdamonds_dir}/{NR_KDAMONDS}"

    def kdamond_dir(self, index: int) -> str:
        return f"{self.kdamonds_dir}/{index}"

    def state(self, index: int) -> str:
        return f"{self.kdamond_dir(index)}/{STATE}"

    def pid(self, index: int) -> str:
        return f"{self.kdamond_dir(index)}/{PID}"

    def nr_contexts(self, index: int) -> str:
        return f"{self.kdamond_dir(index)}/{CONTEXTS}/{NR_CONTEXTS}"

    def context_dir(self, index: int) -> str:
        return f"{self.kdamond_dir(index)}/{CONTEXTS}/0"

    def operations(self, index: int) -> str:
        return f"{self.context_dir(index)}/{OPERATIONS}"

    def avail_operations(self, index: int) -> str:
        return f"{self.context_dir(index)}/{AVAIL_OPERATIONS}"

    def intervals_dir(self, index: int) -> str:
        return f"{self.context_dir(index)}/{MONITORING_ATTRS}/{INTERVALS}"

    def nr_targets(self, index: int) -> str:
        return f"{self.context_dir(index)}/{TARGETS}/{NR_TARGETS}"

    def nr_regions(self, index: int, target_index: int) -> str:
        return f"{self.context_dir(index)}/{TARGETS}/{target_index}/{REGIONS}/{NR_REGIONS}"

    def nr_schemes(self, index: int) -> str:
        return f"{self.context_dir(index)}/{SCHEMES}/{NR_SCHEMES}"

    def scheme_dir(self, index: int, scheme_index: int) -> str:
        return f"{self.context_dir(index)}/{SCHEMES}/{scheme_index}"

    def quotas_dir(self, index: int, scheme_index: int) -> str:
        return f"{self.scheme_dir(index, scheme_index)}/{QUOTAS}"

    def stats_dir(self, index: int, scheme_index: int) -> str:
        return f"{self.scheme_dir(index, scheme_index)}/{STATS}"

    def stats_file(self, index: int, scheme_index: int, name: str) -> str:
        return f"{self.stats_dir(index, scheme_index)}/{name}"

    def filters_dir(self, index: int, scheme_index: int, dir_name: str = FILTERS) -> str:
        """``filters``, ``core_filters`` or ``ops_filters`` of a scheme."""
        return f"{self.scheme_dir(index, scheme_index)}/{dir_name}"

    def nr_filters(self, index: int, scheme_index: int, dir_name: str = FILTERS) -> str:
        return f"{self.filters_dir(index, scheme_index, dir_name)}/{NR_FILTERS}"

    def filter_dir(
        self, index: int, scheme_index: int, filter_index: int, dir_name: str = FILTERS
    ) -> str:
        return f"{self.filters_dir(index, scheme_index, dir_name)}/{filter_index}"

    def tried_regions_dir(self, index: int, scheme_index: int) -> str:
        return f"{self.scheme_dir(index, scheme_index)}/{TRIED_REGIONS}"

    def tried_bytes(self, index: int, scheme_index: int) -> str:
        return f"{self.tried_regions_dir(index, scheme_index)}/{TOTAL_BYTES}"


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

    def with_filter_files(self, filter_listing: Sequence[str]) -> SysfsLayout:
        return SysfsLayout(
            kdamond_files=self.kdamond_files,
            context_files=self.context_files,
            interval_files=self.interval_files,
            scheme_files=self.scheme_files,
            quota_files=self.quota_files,
            stats_files=self.stats_files,
            filter_files=frozenset(filter_listing),
            tried_region_files=self.tried_region_files,
        )

    @staticmethod
    def from_listings(listings: Sequence[Any], *, with_schemes: bool) -> SysfsLayout:
        """From listings of the kdamond, context, intervals, scheme, quotas and stats
        directories and, optionally, tried_regions (None when absent)."""
        tried = listings[6] if with_schemes and len(listings) > 6 else None
        return SysfsLayout(
            kdamond_files=frozenset(listings[0]),
            context_files=frozenset(listings[1]),
            interval_files=frozenset(listings[2]),
            scheme_files=frozenset(listings[3]) if with_schemes else None,
            quota_files=frozenset(listings[4]) if with_schemes else None,
            stats_files=frozenset(listings[5]) if with_schemes else None,
            tried_region_files=frozenset(tried) if tried is not None else None,
        )


def layout_listing_dirs(paths: SysfsPaths, index: int, *, with_schemes: bool) -> list[str]:
    """The directories :meth:`SysfsLayout.from_listings` reads, in its order."""
    dirs = [paths.kdamond_dir(index), paths.context_dir(index), paths.intervals_dir(index)]
    if with_schemes:
        dirs += [paths.scheme_dir(index, 0), paths.quotas_dir(index, 0), paths.stats_dir(index, 0)]
    return dirs


def release_tuple(release: str | None) -> tuple[int, int] | None:
    match = re.match(r"^(\d+)\.(\d+)", release or "")
    return (int(match[1]), int(match[2])) if match else None


def scheme_actions(layout: SysfsLayout, release: str | None) -> tuple[str, ...]:
    """The DAMOS actions a kernel with ``layout`` accepts."""
    actions = BASE_ACTIONS
    version = release_tuple(release)
    if version is None or version >= (6, 0):
        actions += ("lru_prio", "lru_deprio")
    if layout.has_scheme_file("target_nid"):
        actions += ("migrate_hot", "migrate_cold")
    return actions


def context_sysfs_files(context: Context) -> dict[str, str]:
    """The leaf files of a context directory and their values, in writing order.

    Paths are relative to ``contexts/0/``; the ``nr_*`` files and schemes are
    not included (:class:`SysfsPaths` and :func:`scheme_sysfs_files`).
    """
    attrs = context.attrs
    intervals = f"{MONITORING_ATTRS}/{INTERVALS}"
    files = {
        OPERATIONS: context.operations,
        f"{intervals}/sample_us": str(attrs.sample_us),
        f"{intervals}/aggr_us": str(attrs.aggr_us),
        f"{intervals}/update_us": str(attrs.update_us),
        f"{MONITORING_ATTRS}/{NR_REGIONS}/min": str(attrs.min_nr_regions),
        f"{MONITORING_ATTRS}/{NR_REGIONS}/max": str(attrs.max_nr_regions),
    }
    for t, target in enumerate(context.targets):
        target_dir = f"{TARGETS}/{t}"
        if target.pid is not None:
            files[f"{target_dir}/{PID_TARGET}"] = str(target.pid)
        for r, region in enumerate(target.regions):
            files[f"{target_dir}/{REGIONS}/{r}/start"] = str(region.start)
            files[f"{target_dir}/{REGIONS}/{r}/end"] = str(region.end)
    return files


def _yn(value: bool) -> str:
    return "Y" if value else "N"


def scheme_sysfs_files(scheme: Scheme, *, filters_dir: str = "filters") -> dict[str, int | str]:
    """The files of a scheme's sysfs directory and their values, parents' ``nr_*`` first.

    Paths are relative to ``schemes/<N>/``.  Filters go under ``filters_dir``
    (``filters`` on 6.3-6.14 kernels; the sysfs back end splits them between
    ``core_filters`` and ``ops_filters`` on 6.15+).
    """
    pattern = scheme.access_pattern
    files: dict[str, int | str] = {
        "action": scheme.action,
        "apply_interval_us": scheme.apply_interval_us,
        "access_pattern/sz/min": pattern.sz_min,
        "access_pattern/sz/max": pattern.sz_max,
        "access_pattern/nr_accesses/min": pattern.nr_accesses_min,
        "access_pattern/nr_accesses/max": pattern.nr_accesses_max,
        "access_pattern/age/min": pattern.age_min,
        "access_pattern/age/max": pattern.age_max,
        "quotas/ms": scheme.quotas.ms,
        "quotas/bytes": scheme.quotas.bytes,
        "quotas/reset_interval_ms": scheme.quotas.reset_interval_ms,
        "quotas/weights/sz_permil": scheme.quotas.weight_sz_permil,
        "quotas/weights/nr_accesses_permil": scheme.quotas.weight_nr_accesses_permil,
        "quotas/weights/age_permil": scheme.quotas.weight_age_permil,
        "watermarks/metric": scheme.watermarks.metric,
        "watermarks/interval_us": scheme.watermarks.interval_us,
        "watermarks/high": scheme.watermarks.high,
        "watermarks/mid": scheme.watermarks.mid,
        "watermarks/low": scheme.watermarks.low,
        f"{filters_dir}/nr_filters": len(scheme.filters),
    }
    for index, damos_filter in enumerate(scheme.filters):
        files.update(filter_sysfs_files(damos_filter, f"{filters_dir}/{index}"))
    return files


def filter_sysfs_files(damos_filter: Filter, prefix: str) -> dict[str, int | str]:
    """The files of one filter directory (``prefix`` is e.g. ``filters/0``)."""
    files: dict[str, int | str] = {
        f"{prefix}/type": damos_filter.type,
        f"{prefix}/matching": _yn(damos_filter.matching),
        f"{prefix}/allow": _yn(damos_filter.allow),
    }
    if damos_filter.type == "memcg":
        files[f"{prefix}/memcg_path"] = damos_filter.memcg_path
    elif damos_filter.type == "addr":
        files[f"{prefix}/addr_start"] = damos_filter.addr_start
        files[f"{prefix}/addr_end"] = damos_filter.addr_end
    elif damos_filter.type == "target":
        files[f"{prefix}/damon_target_idx"] = damos_filter.target_idx
    return files


SYSFS_NAMES = frozenset(
    {
        KDAMONDS,
        NR_KDAMONDS,
        STATE,
        PID,
        "refresh_ms",
        CONTEXTS,
        NR_CONTEXTS,
        OPERATIONS,
        AVAIL_OPERATIONS,
        "addr_unit",
        MONITORING_ATTRS,
        INTERVALS,
        "sample_us",
        "aggr_us",
        "update_us",
        "intervals_goal",
        NR_REGIONS,
        "min",
        "max",
        TARGETS,
        NR_TARGETS,
        PID_TARGET,
        REGIONS,
        "start",
        "end",
        SCHEMES,
        NR_SCHEMES,
        "action",
        APPLY_INTERVAL_US,
        "target_nid",
        "dests",
        "access_pattern",
        "sz",
        "nr_accesses",
        "age",
        QUOTAS,
        "ms",
        "bytes",
        "reset_interval_ms",
        "weights",
        "sz_permil",
        "nr_accesses_permil",
        "age_permil",
        "goals",
        "effective_bytes",
        "watermarks",
        "metric",
        "interval_us",
        "high",
        "mid",
        "low",
        FILTERS,
        CORE_FILTERS,
        OPS_FILTERS,
        NR_FILTERS,
        "type",
        "matching",
        ALLOW,
        "memcg_path",
        "addr_start",
        "addr_end",
        "damon_target_idx",
        STATS,
        *STATS_FILES,
        *OPTIONAL_STATS_FILES,
        TRIED_REGIONS,
        TOTAL_BYTES,
        *TRIED_REGION_FILES,
        SZ_FILTER_PASSED,
    }
)
"""Every file and directory name above: no other module spells one out
(``tests/unit/test_damon_sysfs_layout.py`` checks the ``sysfs*`` modules)."""
