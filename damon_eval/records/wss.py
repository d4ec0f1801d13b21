"""``report wss``: working set size distributions (damo's definitions).

Per snapshot, the working set size is the total size of the regions with
``nr_accesses >= acc_thres`` and ``size >= sz_thres``.  Then, as in damo
3.4.3 (``adjust_records``):

1. the first ``exclude_samples`` snapshots of every target are dropped
   (DAMON's regions are not adapted yet; old damo silently skipped this when
   ``work_time`` covered one snapshot, damo 3.4.3 and this code always apply it);
2. the rest are cut into windows: a window closes as soon as it spans
   ``work_time`` microseconds (``last.end - first.start >= work_time``); a
   trailing window that never reaches it is dropped.  Several snapshots of one
   window are merged with damo's rule: regions of the first snapshot stay,
   each gains the largest ``nr_accesses`` among the later regions overlapping
   it, and parts of later regions no earlier region covers are added;
3. the values are sorted (``sortby="size"``) or kept in time order
   (``"time"``), and percentile ``p`` is the nearest-rank value
   ``values[int(p / 100 * n)]`` with the index clamped to ``n - 1`` (no
   interpolation).  The average is over the same values.

Deliberate difference from damo 3.4.3: targets are reported separately (as
in the seed); damo adds them up unless ``--per_target``.
``collapse_targets=True`` does exactly what damo does: it adds the targets'
lists index by index *after* sorting each (with ``sortby="size"``), i.e. the
sum of their i-th smallest values rather than of simultaneous snapshots.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from damon_eval.atomic import atomic_open
from damon_eval.errors import ConfigError
from damon_eval.records.model import target_indices
from damon_eval.records.store import Record, as_record


@dataclass(frozen=True, slots=True)
class WssDistribution:
    target: str  # target id as printed (or "all" when targets are collapsed)
    values: np.ndarray  # uint64 working set sizes, sorted or in time order
    sortby: str

    @property
    def average(self) -> float:
        return float(self.values.astype(np.float64).mean()) if self.values.size else float("nan")

    def percentile(self, p: float) -> int:
        """Nearest rank: ``values[int(p / 100 * n)]``, index clamped to ``n - 1``."""
        n = self.values.size
        if n == 0:
            raise ConfigError("no snapshot left after --exclude-samples/--work-time")
        idx = min(int(p / 100.0 * n), n - 1)
        return int(self.values[idx])


def _per_snapshot_wss(record: Record, acc_thres: int, sz_thres: int):
    """(target, start_ns, end_ns, wss) of every snapshot, streamed per chunk."""
    for chunk in record.chunks():
        sizes = chunk.end - chunk.start
        counted = (chunk.nr_accesses >= acc_thres) & (sizes >= np.uint64(max(sz_thres, 0)))
        cum = np.zeros(chunk.n_regions + 1, dtype=np.uint64)
        np.cumsum(np.where(counted, sizes, np.uint64(0)), out=cum[1:])
        wss = cum[chunk.offsets[1:]] - cum[chunk.offsets[:-1]]
        yield chunk, wss


def wss_distribution(
    record: Record | Path | str,
    *,
    acc_thres: int = 1,
    sz_thres: int = 1,
    exclude_samples: int = 20,
    work_time_us: int = 1,
    sortby: str = "size",
    collapse_targets: bool = False,
) -> list[WssDistribution]:
    """Working set size distributions, one per target (see the module docstring)."""
    record = as_record(record)
    if sortby not in ("size", "time"):
        raise ConfigError(f"unknown --sortby {sortby!r} (valid: size, time)")
    if exclude_samples < 0:
        raise ConfigError(f"--exclude-samples must be >= 0 (got {exclude_samples})")
    n_targets = len(record.info.targets)
    seen = np.zeros(n_targets, dtype=np.int64)
    per_target: list[list[np.ndarray]] = [[] for _ in range(n_targets)]
    windows = [_Window() for _ in range(n_targets)]
    for chunk, wss in _per_snapshot_wss(record, acc_thres, sz_thres):
        # Index of each snapshot within its target, to drop the first ones.
        rank = np.zeros(chunk.n_snapshots, dtype=np.int64)
        for t in target_indices(chunk.target):
            mine = np.flatnonzero(chunk.target == t)
            rank[mine] = seen[t] + np.arange(mine.size)
            seen[t] += mine.size
        kept = rank >= exclude_samples
        for t in target_indices(chunk.target[kept]):
            mine = np.flatnonzero(kept & (chunk.target == t))
            durations = chunk.end_ns[mine] - chunk.start_ns[mine]
            if np.all(durations >= work_time_us * 1000) and not windows[t].open:
                per_target[t].append(wss[mine])  # every window is one snapshot
                continue
            per_target[t].append(windows[t].feed(chunk, mine, work_time_us, acc_thres, sz_thres))
    dists = []
    for t in range(n_targets):
        values = np.concatenate(per_target[t]) if per_target[t] else np.zeros(0, dtype=np.uint64)
        dists.append((str(record.info.targets[t]), values.astype(np.uint64)))
    if sortby == "size":
        dists = [(name, np.sort(values, kind="stable")) for name, values in dists]
    if collapse_targets:
        # damo adds the targets' lists index by index after sorting each, so with
        # sortby="size" it sums the targets' i-th smallest values, not per-snapshot totals.
        length = max((v.size for _, v in dists), default=0)
        total = np.zeros(length, dtype=np.uint64)
        for _, v in dists:
            total[: v.size] += v
        dists = [("0", total)]
    return [WssDistribution(target=name, values=values, sortby=sortby) for name, values in dists]


class _Window:
    """damo's ``adjusted_snapshots``/``aggregate_snapshots`` for one target."""

    def __init__(self) -> None:
        self.open = False
        self.first_start = 0
        self.base: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def feed(
        self, chunk, mine: np.ndarray, work_time_us: int, acc_thres: int, sz_thres: int
    ) -> np.ndarray:
        out = []
        limit = work_time_us * 1000
        for i in mine.tolist():
            lo, hi = int(chunk.offsets[i]), int(chunk.offsets[i + 1])
            regions = (
                chunk.start[lo:hi].copy(),
                chunk.end[lo:hi].copy(),
                chunk.nr_accesses[lo:hi].astype(np.int64),
            )
            if not self.open:
                self.open = True
                self.first_start = int(chunk.start_ns[i])
                self.base = regions
            else:
                self.base = _merge_into(self.base, regions)
            if int(chunk.end_ns[i]) - self.first_start >= limit:
                starts, ends, acc = self.base
                sizes = ends - starts
                counted = (acc >= acc_thres) & (sizes >= np.uint64(max(sz_thres, 0)))
                out.append(int(sizes[counted].sum(dtype=np.uint64)))
                self.open = False
                self.base = None
        return np.asarray(out, dtype=np.uint64)


def _merge_into(
    base: tuple[np.ndarray, np.ndarray, np.ndarray],
    new: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """damo's ``add_region`` for every region of one more snapshot.

    Each base region gains the largest ``nr_accesses`` of the new regions
    that overlap it; the parts of new regions outside every base region are
    added with their own ``nr_accesses``.
    """
    b_start, b_end, b_acc = base
    n_start, n_end, n_acc = new
    order = np.argsort(b_start, kind="stable")
    b_start, b_end, b_acc = b_start[order], b_end[order], b_acc[order]
    # New regions overlapping base region k: indices [first, past) of the sorted new ones.
    first = np.searchsorted(n_end, b_start, side="right")
    past = np.searchsorted(n_start, b_end, side="left")
    has = past > first
    gain = np.zeros(b_start.size, dtype=np.int64)
    for idx in np.flatnonzero(has).tolist():
        gain[idx] = n_acc[first[idx] : past[idx]].max()
    b_acc = b_acc + gain
    # Parts of new regions not covered by any base region.
    piece_start, piece_end, piece_acc = _uncovered(n_start, n_end, n_acc, b_start, b_end)
    return (
        np.concatenate((b_start, piece_start)),
        np.concatenate((b_end, piece_end)),
        np.concatenate((b_acc, piece_acc)),
    )


def _uncovered(n_start, n_end, n_acc, b_start, b_end):
    """Connected parts of each new region outside the (disjoint) base regions."""
    starts, ends, accs = [], [], []
    for s, e, a in zip(n_start.tolist(), n_end.tolist(), n_acc.tolist(), strict=True):
        lo = int(np.searchsorted(b_end, s, side="right"))
        hi = int(np.searchsorted(b_start, e, side="left"))
        cursor = s
        for k in range(lo, hi):
            bs, be = int(b_start[k]), int(b_end[k])
            if bs > cursor:
                starts.append(cursor)
                ends.append(bs)
                accs.append(a)
            cursor = max(cursor, be)
        if cursor < e:
            starts.append(cursor)
            ends.append(e)
            accs.append(a)
    return (
        np.asarray(starts, dtype=np.uint64),
        np.asarray(ends, dtype=np.uint64),
        np.asarray(accs, dtype=np.int64),
    )


def wss_lines(
    record: Record, dists: Sequence[WssDistribution], percentiles: Sequence[int]
) -> Iterator[str]:
    """The seed's text form."""
    yield "# <percentile> <wss>"
    for dist in dists:
        yield f"# {record.info.target_label}\t{dist.target}"
        if dist.values.size == 0:
            yield "# no snapshot"
            continue
        yield f"# avr:\t{int(dist.average)}"
        for p in percentiles:
            yield f"{p}\t{dist.percentile(p)}"


def wss_dataframe(dists: Sequence[WssDistribution], percentiles: Sequence[int]):
    """Long table: target, percentile, wss (and the average as percentile None)."""
    import pandas as pd

    rows = []
    for dist in dists:
        for p in percentiles:
            if dist.values.size:
                rows.append({"target": dist.target, "percentile": p, "wss": dist.percentile(p)})
    frame = pd.DataFrame(rows, columns=["target", "percentile", "wss"])
    frame.attrs["average"] = {d.target: d.average for d in dists}
    return frame


def plot_wss(
    dists: Sequence[WssDistribution], percentiles: Sequence[int], path: Path, *, dpi: int = 100
) -> None:
    """Line plot of the distribution (x: percentile, or runtime percent for sortby=time)."""
    from damon_eval.records.heats import image_format

    fmt = image_format(path)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5), dpi=dpi)
    try:
        for dist in dists:
            if dist.values.size == 0:
                continue
            xs = list(percentiles)
            ax.plot(xs, [dist.percentile(p) for p in xs], marker="o", label=f"target {dist.target}")
        sortby = dists[0].sortby if dists else "size"
        ax.set_xlabel("runtime (percent)" if sortby == "time" else "percentile")
        ax.set_ylabel("working set size (bytes)")
        if len(dists) > 1:
            ax.legend()
        fig.tight_layout()
        with atomic_open(Path(path), "wb") as out:  # a reader never sees half an image
            fig.savefig(out, format=fmt, dpi=dpi)
    finally:
        plt.close(fig)
