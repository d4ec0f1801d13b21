"""Staging a kdamond's parameters in sysfs: every write, its read-back and check.

Staging follows the kernel's rules: a ``nr_*`` file is written before the
numbered directories it creates are used; nothing is validated by the kernel
until ``on`` or ``commit``.  :func:`stage` writes every ``nr_*`` file (each
creates the directories the next writes go to), lists the new directories
(feature detection), reads ``avail_operations``, writes every leaf value, then
reads every value back, all in one batch; optional files
(``apply_interval_us``, filters' ``allow``) are written only where they exist.
Mismatches are refused before ``on``.  Filters need the layout first: one more
round trip the first time on a back end.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from damon_eval.damon.errors import (
    DamonError,
    DamonReadbackError,
    DamonUnsupportedError,
    translate_fs_error,
)
from damon_eval.damon.model import Context, Filter, Kdamond, Scheme
from damon_eval.damon.sysfs_layout import (
    ALLOW,
    APPLY_INTERVAL_US,
    CORE_FILTERS,
    FILTERS,
    OPS_FILTERS,
    SysfsLayout,
    SysfsPaths,
    context_sysfs_files,
    filter_sysfs_files,
    layout_listing_dirs,
    scheme_sysfs_files,
)
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


@dataclass(frozen=True, slots=True)
class Leaf:
    """One value to write and read back.  An ``optional`` file is written only if
    the kernel has it; ``needed_by`` says why its absence is an error (the value
    is not the kernel's default)."""

    path: str
    value: str
    optional: bool = False
    needed_by: str | None = None


def stage(
    fs: FileSystem,
    paths: SysfsPaths,
    index: int,
    kdamond: Kdamond,
    layout: SysfsLayout | None,
    *,
    create: bool,
) -> SysfsLayout:
    """Write everything but ``state``, read it all back and check it (see the module
    docstring): one round trip, two for filters when ``layout`` has not seen the
    kernel's scheme directory yet.  Returns the layout observed, completed by
    ``layout``."""
    context = kdamond.context
    kd, avail_path = paths.kdamond_dir(index), paths.avail_operations(index)
    nr_ops: list[Op] = []
    if create:
        nr_ops += [
            Write(paths.nr_kdamonds, "1"),
            Write(paths.nr_contexts(index), "1"),
        ]
    nr_ops.append(Write(paths.nr_targets(index), str(len(context.targets))))
    for t, target in enumerate(context.targets):
        nr_ops.append(Write(paths.nr_regions(index, t), str(len(target.regions))))
    nr_ops.append(Write(paths.nr_schemes(index), str(len(context.schemes))))
    with_schemes = bool(context.schemes)
    listing_ops: list[Op] = [
        ListDir(d) for d in layout_listing_dirs(paths, index, with_schemes=with_schemes)
    ]
    if with_schemes:
        listing_ops.append(ListDirIfExists(paths.tried_regions_dir(index, 0)))
    avail = ReadIfExists(avail_path)
    head: list[Op] = [*nr_ops, *listing_ops, avail]
    doing = f"staging the parameters of {kd}"
    has_filters = any(s.filters for s in context.schemes)

    def observed(values: Sequence[Any]) -> SysfsLayout:
        listings = values[len(nr_ops) : len(head) - 1]
        return SysfsLayout.from_listings(listings, with_schemes=with_schemes)

    if has_filters and (layout is None or layout.scheme_files is None):
        # Where filters go depends on the scheme directory's files.
        values = _run_staging(fs, head, len(head) - 1, context, avail_path, doing)
        seen = observed(values)
        check_operations(fs, context, avail_path, values[-1])
        leaves, leaf_ops = leaf_ops_for(paths, index, context, seen)
        leaf_values = _run_staging(fs, leaf_ops, None, context, avail_path, doing)
    else:
        leaves, leaf_ops = leaf_ops_for(paths, index, context, layout)
        values = _run_staging(fs, [*head, *leaf_ops], len(head) - 1, context, avail_path, doing)
        seen = observed(values)
        check_operations(fs, context, avail_path, values[len(head) - 1])
        leaf_values = values[len(head) :]
    filter_listing = check_leaves(leaves, leaf_ops, leaf_values)
    if filter_listing is not None:
        seen = seen.with_filter_files(filter_listing)
    return seen.completed_by(layout)


def _run_staging(
    fs: FileSystem,
    ops: list[Op],
    avail_at: int | None,
    context: Context,
    avail_path: str,
    doing: str,
) -> list[Any]:
    """Run a staging batch; a failing write after ``avail_operations`` was read
    is explained by it when the operations set is the cause."""
    try:
        return fs.execute(ops)
    except FsError as exc:
        if avail_at is not None and exc.index is not None and exc.index > avail_at:
            check_operations(fs, context, avail_path, exc.completed[avail_at])
        raise translate_fs_error(exc, doing) from exc


def check_operations(fs: FileSystem, context: Context, avail_path: str, avail: object) -> None:
    if not isinstance(avail, str):  # no avail_operations file (Linux < 5.19)
        return
    available = avail.split()
    if context.operations not in available:
        raise DamonUnsupportedError(
            f"operations set {context.operations!r} is not available on "
            f"{fs.description}; {avail_path} lists "
            f"{' '.join(available) or 'nothing'}"
        )


def filter_placement(
    scheme: Scheme, layout: SysfsLayout | None, scheme_index: int
) -> dict[str, list[Filter]]:
    """Which filter directory each of a scheme's filters goes to on this kernel."""
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
    if dirs == (FILTERS,):
        return {FILTERS: list(scheme.filters)}
    core = [f for f in scheme.filters if f.handled_by_core]
    ops = [f for f in scheme.filters if not f.handled_by_core]
    return {name: group for name, group in ((CORE_FILTERS, core), (OPS_FILTERS, ops)) if group}


def leaves_for(
    paths: SysfsPaths, index: int, context: Context, layout: SysfsLayout | None
) -> list[Leaf]:
    """Every value a context writes, with its path."""
    ctx = paths.context_dir(index)
    leaves = [
        Leaf(f"{ctx}/{relative}", value) for relative, value in context_sysfs_files(context).items()
    ]
    for s, scheme in enumerate(context.schemes):
        scheme_dir = paths.scheme_dir(index, s)
        for relative, value in scheme_sysfs_files(scheme).items():
            if relative.startswith(f"{FILTERS}/"):
                continue
            if relative == APPLY_INTERVAL_US:
                needed_by = None
                if scheme.apply_interval_us:
                    needed_by = (
                        f"scheme {s} sets apply_interval_us={scheme.apply_interval_us} but "
                        "this kernel has no apply_interval_us file (Linux 6.7+)"
                    )
                leaves.append(Leaf(f"{scheme_dir}/{relative}", str(value), True, needed_by))
                continue
            leaves.append(Leaf(f"{scheme_dir}/{relative}", str(value)))
        for dir_name, group in filter_placement(scheme, layout, s).items():
            for f, damos_filter in enumerate(group):
                leafs = filter_sysfs_files(damos_filter, f"{dir_name}/{f}")
                for relative, value in leafs.items():
                    path = f"{scheme_dir}/{relative}"
                    if relative.endswith(f"/{ALLOW}"):
                        needed_by = None
                        if damos_filter.allow:
                            needed_by = (
                                f"scheme {s} has an allow filter but this kernel's filters "
                                "have no 'allow' file (Linux 6.14+)"
                            )
                        leaves.append(Leaf(path, str(value), True, needed_by))
                    else:
                        leaves.append(Leaf(path, str(value)))
    return leaves


def leaf_ops_for(
    paths: SysfsPaths, index: int, context: Context, layout: SysfsLayout | None
) -> tuple[list[Leaf], list[Op]]:
    """Filters' ``nr_filters`` and a listing of the first filter, then every leaf
    written, then every leaf read back."""
    ops: list[Op] = []
    first_filter_dir: str | None = None
    for s, scheme in enumerate(context.schemes):
        for dir_name, group in filter_placement(scheme, layout, s).items():
            ops.append(Write(paths.nr_filters(index, s, dir_name), str(len(group))))
            first_filter_dir = first_filter_dir or paths.filter_dir(index, s, 0, dir_name)
    if first_filter_dir is not None:
        ops.append(ListDir(first_filter_dir))
    leaves = leaves_for(paths, index, context, layout)
    ops += [
        WriteIfExists(leaf.path, leaf.value) if leaf.optional else Write(leaf.path, leaf.value)
        for leaf in leaves
    ]
    ops += [ReadIfExists(leaf.path) if leaf.optional else Read(leaf.path) for leaf in leaves]
    return leaves, ops


def check_leaves(leaves: list[Leaf], ops: list[Op], values: Sequence[Any]) -> list[str] | None:
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


def _same(written: str, read: str) -> bool:
    read = read.strip()
    if written in ("Y", "N"):
        return read[:1].upper() in (("Y", "1") if written == "Y" else ("N", "0"))
    if written.isdigit():
        return read.isdigit() and int(read) == int(written)
    return read == written
