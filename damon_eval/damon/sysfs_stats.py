"""Reading kdamond states, DAMOS statistics and tried regions from sysfs.

The reads and their parsing, without running them: the back end batches
them (statistics after the ``state`` command that refreshes them, such as
``update_schemes_stats``) so that each costs one round trip.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from damon_eval.damon.backend import (
    KdamondStatus,
    SchemeStats,
    TriedRegion,
    TriedRegions,
    parse_int,
)
from damon_eval.damon.sysfs_layout import (
    NR_SCHEMES,
    NR_TARGETS,
    OPTIONAL_STATS_FILES,
    SPECULATIVE_KDAMONDS,
    STATS,
    STATS_FILES,
    SZ_FILTER_PASSED,
    TOTAL_BYTES,
    TRIED_REGION_FILES,
    SysfsPaths,
)
from damon_eval.fs import Op, Read, ReadIfExists

StateRow = tuple[str, int | None, int]
"""``(state, pid, nr_contexts)`` of one kdamond."""


def state_reads(paths: SysfsPaths, index: int, read: type[Read] | type[ReadIfExists]) -> list[Op]:
    return [read(paths.state(index)), read(paths.pid(index)), read(paths.nr_contexts(index))]


def speculative_state_reads(paths: SysfsPaths) -> list[Op]:
    """State reads of the first :data:`SPECULATIVE_KDAMONDS` kdamonds, present or not."""
    return [op for i in range(SPECULATIVE_KDAMONDS) for op in state_reads(paths, i, ReadIfExists)]


def state_row(paths: SysfsPaths, index: int, values: Sequence[str]) -> StateRow:
    return (
        values[0].strip(),
        pid_of(values[1]),
        parse_int(values[2], paths.nr_contexts(index)),
    )


def state_rows(
    paths: SysfsPaths, nr_text: str, lookup: Callable[[Op], Any]
) -> list[StateRow] | None:
    """Rows from speculative reads; None when they do not cover every kdamond."""
    rows = []
    for i in range(parse_int(nr_text, paths.nr_kdamonds)):
        values = [lookup(op) for op in state_reads(paths, i, ReadIfExists)]
        if any(v is None for v in values):
            return None
        rows.append(state_row(paths, i, values))
    return rows


def context_reads(paths: SysfsPaths, indexes: Sequence[int]) -> list[Op]:
    """Operations set, number of targets and of schemes of each kdamond's context."""
    return [
        Read(path)
        for i in indexes
        for path in (paths.operations(i), paths.nr_targets(i), paths.nr_schemes(i))
    ]


def statuses_from(
    rows: Sequence[StateRow], indexes: Sequence[int], context_values: Sequence[str]
) -> list[KdamondStatus]:
    """Statuses of every row, with the :func:`context_reads` results of ``indexes``."""
    details = {i: context_values[3 * n : 3 * n + 3] for n, i in enumerate(indexes)}
    statuses = []
    for i, (state, pid, _) in enumerate(rows):
        extra = details.get(i)
        statuses.append(
            KdamondStatus(
                index=i,
                state=state,
                pid=pid,
                operations=extra[0].strip() if extra else None,
                nr_targets=parse_int(extra[1], NR_TARGETS) if extra else None,
                nr_schemes=parse_int(extra[2], NR_SCHEMES) if extra else None,
            )
        )
    return statuses


def pid_of(text: str) -> int | None:
    """A kdamond's pid, None when it does not run (the file reads -1 or 0)."""
    try:
        value = int(text.strip())
    except ValueError:
        return None
    return value if value > 0 else None


@dataclass(frozen=True, slots=True)
class StatsReads:
    """The stats files read for ``count`` schemes, in the order of :attr:`ops`."""

    count: int
    names: tuple[str, ...]
    extras: tuple[str, ...]
    ops: tuple[Op, ...]

    def parse(self, values: Sequence[str]) -> tuple[SchemeStats, ...]:
        columns = self.names + self.extras
        width = len(columns)
        result = []
        for s in range(self.count):
            row = dict(zip(columns, values[s * width : (s + 1) * width], strict=True))
            numbers = {k: parse_int(v, f"{STATS}/{k}") for k, v in row.items()}
            # SchemeStats' fields are named after the files (0 where a kernel lacks one).
            base = {name: numbers.get(name, 0) for name in STATS_FILES}
            result.append(SchemeStats(**base, extra={k: numbers[k] for k in self.extras}))
        return tuple(result)


def stats_reads(paths: SysfsPaths, index: int, count: int, available: frozenset[str]) -> StatsReads:
    """Reads of every stats file the kernel has (``available``) for each scheme."""
    names = tuple(n for n in STATS_FILES if n in available)
    extras = tuple(n for n in OPTIONAL_STATS_FILES if n in available)
    ops = tuple(Read(paths.stats_file(index, s, n)) for s in range(count) for n in names + extras)
    return StatsReads(count, names, extras, ops)


def tried_regions_dirs(paths: SysfsPaths, index: int, scheme_indexes: Sequence[int]) -> list[str]:
    return [paths.tried_regions_dir(index, s) for s in scheme_indexes]


@dataclass(frozen=True, slots=True)
class TriedRegionReads:
    """The reads of every region file found by the listings, in :attr:`ops` order."""

    scheme_indexes: tuple[int, ...]
    fields: tuple[str, ...]
    plan: tuple[tuple[int, tuple[int, ...], bool], ...]
    """Per scheme: offset of its values, region numbers, whether ``total_bytes`` exists."""
    ops: tuple[Op, ...]

    def parse(self, values: Sequence[Any]) -> tuple[TriedRegions, ...]:
        width = len(self.fields)
        with_filter_bytes = SZ_FILTER_PASSED in self.fields
        result = []
        for scheme_index, (offset, region_numbers, has_total) in zip(
            self.scheme_indexes, self.plan, strict=True
        ):
            regions = []
            for n, _ in enumerate(region_numbers):
                row = values[offset + n * width : offset + (n + 1) * width]
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
                total = parse_int(values[offset + len(region_numbers) * width], TOTAL_BYTES)
            result.append(TriedRegions(scheme_index, tuple(regions), total))
        return tuple(result)


def tried_region_reads(
    scheme_indexes: Sequence[int],
    dirs: Sequence[str],
    listings: Sequence[Sequence[str]],
    *,
    with_filter_bytes: bool,
) -> TriedRegionReads:
    """Reads of each region's files, from the listings of the tried_regions directories."""
    fields = TRIED_REGION_FILES + ((SZ_FILTER_PASSED,) if with_filter_bytes else ())
    ops: list[Op] = []
    plan: list[tuple[int, tuple[int, ...], bool]] = []
    for directory, listing in zip(dirs, listings, strict=True):
        region_numbers = tuple(sorted(int(n) for n in listing if n.isdigit()))
        has_total = TOTAL_BYTES in listing
        plan.append((len(ops), region_numbers, has_total))
        for r in region_numbers:
            ops += [Read(f"{directory}/{r}/{name}") for name in fields]
        if has_total:
            ops.append(Read(f"{directory}/{TOTAL_BYTES}"))
    return TriedRegionReads(tuple(scheme_indexes), fields, tuple(plan), tuple(ops))
