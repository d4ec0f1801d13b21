"""``report heats``: access heatmaps (time x address x access frequency).

Definitions (see ``docs/reports.md`` for the comparison with damo):

* A snapshot of a target covers the time ``[start, end]`` where ``end`` is its
  timestamp and ``start`` the previous snapshot's timestamp (the first one's
  start is inferred as damo does, see :mod:`damon_eval.records.store`).
* The grid has ``tres`` x ``ares`` pixels.  As in the seed, the pixel sizes
  are ``tunit = (tmax - tmin) // tres`` and ``aunit = (amax - amin) // ares``
  (integers; the ranges shrink to ``tres * tunit`` and ``ares * aunit``).
* The heat of a pixel is the time- and space-weighted average of
  ``nr_accesses`` over the pixel: ``sum(nr * overlap_time * overlap_bytes) /
  (tunit * aunit)`` over every (snapshot, region) overlapping it.  Parts of a
  pixel no snapshot covers count as zero.  This is the seed's and old damo's
  definition and damo 3.4.3's for records without monitoring intervals.
* The guide of a target is its time span (first snapshot start to last
  snapshot end) and the address ranges it really used: the union of every
  snapshot's regions, i.e. the monitored span minus the gaps present in
  every snapshot.  Without axis bounds, the heatmap shows the target with the
  most used space and, in it, the largest used range (the seed's choice).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path

import numpy as np

from damon_eval.atomic import atomic_open
from damon_eval.errors import ConfigError
from damon_eval.records.model import SnapshotChunk, target_indices
from damon_eval.records.store import Record, as_record

IMAGE_FORMATS = ("png", "pdf", "jpeg", "jpg", "svg")
_BATCH_SNAPSHOTS = 1024


@dataclass(frozen=True, slots=True)
class TargetGuide:
    target: int  # index into record.info.targets
    start_ns: int
    end_ns: int
    ranges: tuple[tuple[int, int], ...]  # used address ranges, ascending

    @property
    def total_space(self) -> int:
        return sum(end - start for start, end in self.ranges)

    def largest_range(self) -> tuple[int, int]:
        return max(self.ranges, key=lambda r: (r[1] - r[0], -r[0]))


def _union(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merge intervals (touching ones too) into sorted disjoint ones."""
    keep = ends > starts
    starts, ends = starts[keep], ends[keep]
    if starts.size == 0:
        return starts, ends
    order = np.argsort(starts, kind="stable")
    starts, ends = starts[order], ends[order]
    reach = np.maximum.accumulate(ends)
    new = np.ones(starts.size, dtype=bool)
    new[1:] = starts[1:] > reach[:-1]
    first = np.flatnonzero(new)
    last = np.append(first[1:], starts.size) - 1
    return starts[first], reach[last]


def guides(record: Record | Path | str) -> list[TargetGuide]:
    """Per-target guides, the target with the most used space first (seed order)."""
    record = as_record(record)
    acc: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for chunk in record.chunks():
        rows = chunk.row_snapshot()
        row_target = chunk.target[rows]
        for t in target_indices(chunk.target):
            mine = row_target == t
            starts, ends = chunk.start[mine], chunk.end[mine]
            if t in acc:
                starts = np.concatenate((acc[t][0], starts))
                ends = np.concatenate((acc[t][1], ends))
            acc[t] = _union(starts, ends)
    out = []
    for t, (starts, ends) in acc.items():
        stats = record.stats[t]
        out.append(
            TargetGuide(
                target=t,
                start_ns=stats.first_start_ns,
                end_ns=stats.last_end_ns,
                ranges=tuple(zip(starts.tolist(), ends.tolist(), strict=True)),
            )
        )
    out.sort(key=lambda g: (-g.total_space, g.target))
    return out


def guide_lines(record: Record) -> Iterator[str]:
    """The seed's ``--guide`` text."""
    label = record.info.target_label
    for g in guides(record):
        yield f"{label}:{record.info.targets[g.target].target_id}"
        yield f"time: {g.start_ns}-{g.end_ns} ({g.end_ns - g.start_ns})"
        for i, (start, end) in enumerate(g.ranges):
            yield f"region\t{i:2d}: {start:020d}-{end:020d} ({end - start})"


@dataclass(frozen=True, slots=True)
class Heatmap:
    target: int
    tmin: int
    tunit: int
    amin: int
    aunit: int
    grid: np.ndarray  # float64 [tres, ares]: heat of time pixel i, address pixel j

    @property
    def tres(self) -> int:
        return int(self.grid.shape[0])

    @property
    def ares(self) -> int:
        return int(self.grid.shape[1])

    @property
    def tmax(self) -> int:
        return self.tmin + self.tunit * self.tres

    @property
    def amax(self) -> int:
        return self.amin + self.aunit * self.ares

    def times(self) -> np.ndarray:
        """Start time (ns) of every time pixel."""
        return self.tmin + self.tunit * np.arange(self.tres, dtype=np.int64)

    def addrs(self) -> list[int]:
        """Start address of every address pixel (Python ints: addresses may exceed int64)."""
        return [self.amin + self.aunit * j for j in range(self.ares)]


@dataclass(frozen=True, slots=True)
class HeatmapRange:
    target: int
    tmin: int
    tmax: int
    amin: int
    amax: int


DRAW_RANGES = ("largest", "hottest")


def range_heat(record: Record, guide: TargetGuide) -> list[float]:
    """Access heat of each of the guide's ranges: the sum over snapshots of
    nr_accesses x region bytes (every region lies inside one range)."""
    starts = np.array([lo for lo, _ in guide.ranges], dtype=np.uint64)
    heat = np.zeros(len(guide.ranges), dtype=np.float64)
    for chunk in record.chunks():
        mine = chunk.target[chunk.row_snapshot()] == guide.target
        index = np.searchsorted(starts, chunk.start[mine], side="right") - 1
        weight = chunk.nr_accesses[mine].astype(np.float64) * (
            chunk.end[mine] - chunk.start[mine]
        ).astype(np.float64)
        np.add.at(heat, index, weight)
    return heat.tolist()


def resolve_range(
    record: Record,
    *,
    target: str | int | None = None,
    tmin: int | None = None,
    tmax: int | None = None,
    amin: int | None = None,
    amax: int | None = None,
    draw_range: str = "largest",
) -> HeatmapRange:
    """Fill missing bounds from the guide: its largest used range (the seed's
    rule) or, with ``draw_range="hottest"``, the range with the most access
    heat in total (nr_accesses x bytes over the record): a process's biggest
    mapping is often idle.  damo's ``hottest`` ranks heat per byte instead,
    which favours small busy areas such as the stack."""
    if draw_range not in DRAW_RANGES:
        raise ConfigError(f"draw range {draw_range!r} is not one of {', '.join(DRAW_RANGES)}")
    all_guides = guides(record)
    tidx = record.target_index(target)
    guide = all_guides[0] if tidx is None else next(g for g in all_guides if g.target == tidx)
    if draw_range == "hottest" and amin is None and amax is None:
        heat = range_heat(record, guide)
        lo, hi = guide.ranges[max(range(len(heat)), key=lambda i: (heat[i], -i))]
    else:
        lo, hi = guide.largest_range()
    return HeatmapRange(
        target=guide.target,
        tmin=guide.start_ns if tmin is None else int(tmin),
        tmax=guide.end_ns if tmax is None else int(tmax),
        amin=lo if amin is None else int(amin),
        amax=hi if amax is None else int(amax),
    )


def heatmap_grid(
    record: Record | Path | str,
    *,
    target: str | int | None = None,
    tres: int = 500,
    ares: int = 500,
    tmin: int | None = None,
    tmax: int | None = None,
    amin: int | None = None,
    amax: int | None = None,
    draw_range: str = "largest",
) -> Heatmap:
    """Compute the heatmap of one target (see the module docstring)."""
    record = as_record(record)
    if tres < 1 or ares < 1:
        raise ConfigError(f"resolutions must be at least 1 (got --tres {tres} --ares {ares})")
    rng = resolve_range(
        record, target=target, tmin=tmin, tmax=tmax, amin=amin, amax=amax, draw_range=draw_range
    )
    tunit = (rng.tmax - rng.tmin) // tres
    aunit = (rng.amax - rng.amin) // ares
    if tunit < 1:
        raise ConfigError(
            f"time range [{rng.tmin}, {rng.tmax}) ns is empty or narrower than --tres {tres}"
        )
    if aunit < 1:
        raise ConfigError(
            f"address range [{rng.amin}, {rng.amax}) is empty or narrower than --ares {ares}"
        )
    grid = np.zeros((tres, ares), dtype=np.float64)
    for chunk in record.chunks():
        mine = np.flatnonzero(chunk.target == rng.target)
        # Bounded batches: the per-snapshot address profiles are batch x ares floats.
        for lo in range(0, mine.size, _BATCH_SNAPSHOTS):
            part = chunk.take(mine[lo : lo + _BATCH_SNAPSHOTS])
            _add_heat(grid, part, rng.tmin, tunit, rng.amin, aunit)
    grid /= float(tunit) * float(aunit)
    return Heatmap(rng.target, rng.tmin, tunit, rng.amin, aunit, grid)


def _ramp(counts: np.ndarray) -> np.ndarray:
    total = int(counts.sum())
    starts = np.zeros(counts.size, dtype=np.int64)
    np.cumsum(counts[:-1], out=starts[1:])
    return np.arange(total, dtype=np.int64) - np.repeat(starts, counts)


def _add_heat(
    grid: np.ndarray, chunk: SnapshotChunk, tmin: int, tunit: int, amin: int, aunit: int
) -> None:
    tres, ares = grid.shape
    tmax = tmin + tunit * tres
    amax = amin + aunit * ares

    # Address profile of every snapshot: P[s, j] = sum(nr * bytes of pixel j).
    a0 = np.maximum(chunk.start, np.uint64(amin))
    a1 = np.minimum(chunk.end, np.uint64(amax))
    inside = a1 > a0
    rows = chunk.row_snapshot()[inside]
    a0, a1 = a0[inside], a1[inside]
    nr = chunk.nr_accesses[inside].astype(np.float64)
    k0 = ((a0 - np.uint64(amin)) // np.uint64(aunit)).astype(np.int64)
    k1 = ((a1 - np.uint64(1) - np.uint64(amin)) // np.uint64(aunit)).astype(np.int64)
    span = k1 - k0 + 1
    pixel = np.repeat(k0, span) + _ramp(span)
    edge = np.uint64(amin) + pixel.astype(np.uint64) * np.uint64(aunit)
    lo = np.maximum(np.repeat(a0, span), edge)
    hi = np.minimum(np.repeat(a1, span), edge + np.uint64(aunit))
    weight = np.repeat(nr, span) * (hi - lo).astype(np.float64)
    n = chunk.n_snapshots
    profile = np.bincount(
        np.repeat(rows, span) * ares + pixel, weights=weight, minlength=n * ares
    ).reshape(n, ares)

    # Time overlap of every snapshot with every time pixel it touches.
    t0 = np.maximum(chunk.start_ns, tmin)
    t1 = np.minimum(chunk.end_ns, tmax)
    live = np.flatnonzero(t1 > t0)
    if live.size == 0:
        return
    t0, t1 = t0[live], t1[live]
    i0 = (t0 - tmin) // tunit
    i1 = (t1 - 1 - tmin) // tunit
    tspan = i1 - i0 + 1
    tpixel = np.repeat(i0, tspan) + _ramp(tspan)
    tedge = tmin + tpixel * tunit
    overlap = (
        np.minimum(np.repeat(t1, tspan), tedge + tunit) - np.maximum(np.repeat(t0, tspan), tedge)
    ).astype(np.float64)
    contrib = overlap[:, None] * profile[np.repeat(live, tspan)]
    order = np.argsort(tpixel, kind="stable")
    tpixel, contrib = tpixel[order], contrib[order]
    first = np.flatnonzero(np.concatenate(([True], tpixel[1:] != tpixel[:-1])))
    grid[tpixel[first]] += np.add.reduceat(contrib, first, axis=0)


def heats_lines(heatmap: Heatmap) -> Iterator[str]:
    """The seed's text output: ``<time> <address> <frequency>``, relative to tmin/amin."""
    middles = [f"\t{heatmap.aunit * j}\t" for j in range(heatmap.ares)]
    for i in range(heatmap.tres):
        time = str(heatmap.tunit * i)
        heats = map(repr, heatmap.grid[i].tolist())
        yield "\n".join(map("".join, zip(repeat(time), middles, heats)))


@dataclass(frozen=True, slots=True)
class PlotGeometry:
    """Where the heatmap's data area landed in the image (pixels, origin top-left)."""

    width: int
    height: int
    left: float
    right: float
    top: float
    bottom: float


def image_format(path: Path) -> str:
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in IMAGE_FORMATS:
        raise ConfigError(
            f"cannot tell the image format of {path} (valid extensions: "
            f"{', '.join('.' + f for f in IMAGE_FORMATS)})"
        )
    return "jpeg" if suffix == "jpg" else suffix


def plot_heatmap(
    heatmap: Heatmap, path: Path, *, title: str | None = None, dpi: int = 100
) -> PlotGeometry:
    """Draw ``heatmap`` to ``path`` (format from the extension) with matplotlib."""
    fmt = image_format(path)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    fig, ax = plt.subplots(figsize=(8, 6), dpi=dpi)
    try:
        seconds = heatmap.tunit * heatmap.tres / 1e9
        image = ax.imshow(
            heatmap.grid.T,
            origin="lower",
            aspect="auto",
            interpolation="nearest",
            cmap="inferno",
            extent=(0.0, seconds, 0.0, float(heatmap.aunit * heatmap.ares)),
        )
        ax.set_xlabel("time (s)")
        amin = heatmap.amin
        ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _pos: f"{amin + int(y):#x}"))
        ax.set_ylabel("address")
        colorbar = fig.colorbar(image, ax=ax)
        colorbar.set_label("access frequency (nr_accesses per aggregation)")
        if title:
            ax.set_title(title)
        fig.tight_layout()
        fig.canvas.draw()
        width, height = fig.canvas.get_width_height()
        box = ax.get_window_extent()
        with atomic_open(Path(path), "wb") as out:  # a reader never sees half an image
            fig.savefig(out, format=fmt, dpi=dpi)
        return PlotGeometry(
            width=width,
            height=height,
            left=float(box.x0),
            right=float(box.x1),
            top=float(height - box.y1),
            bottom=float(height - box.y0),
        )
    finally:
        plt.close(fig)
