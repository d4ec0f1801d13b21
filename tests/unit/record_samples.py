"""Hand-made DAMON records with known patterns, rendered in every input format.

The renderers here are written independently of ``damon_eval.records.writers``
(plain string formatting and ``struct``), so reading them back tests the
readers rather than a round trip through our own writer.
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

AGG_NS = 100_000_000  # 100 ms aggregation interval
MiB = 1 << 20


@dataclass
class Snap:
    time_ns: int
    target: int
    regions: list[tuple[int, int, int, int]]  # start, end, nr_accesses, age


@dataclass
class Sample:
    snaps: list[Snap] = field(default_factory=list)

    def targets(self) -> list[int]:
        seen: list[int] = []
        for s in self.snaps:
            if s.target not in seen:
                seen.append(s.target)
        return seen

    def of(self, target: int) -> list[Snap]:
        return [s for s in self.snaps if s.target == target]


def moving_hot(
    n: int = 25,
    *,
    base: int = 0x7F0000000000,
    n_regions: int = 4,
    region_size: int = MiB,
    target: int = 0,
    t0: int = 41_751_439_000,
    hot_nr: int = 10,
    per: int = 5,
) -> Sample:
    """``n_regions`` equal regions; region ``(i // per) % n_regions`` is hot in snapshot i."""
    snaps = []
    for i in range(n):
        hot = (i // per) % n_regions
        regions = [
            (
                base + k * region_size,
                base + (k + 1) * region_size,
                hot_nr if k == hot else 0,
                i if k == hot else i + 3,
            )
            for k in range(n_regions)
        ]
        snaps.append(Snap(t0 + i * AGG_NS, target, regions))
    return Sample(snaps)


def two_targets() -> Sample:
    """Two targets with different spaces, events of one aggregation a few us apart."""
    a = moving_hot(6, target=0, n_regions=2, region_size=2 * MiB)
    b = moving_hot(6, target=1, n_regions=3, region_size=MiB, base=0x5500000000, hot_nr=4)
    snaps = []
    for sa, sb in zip(a.snaps, b.snaps, strict=True):
        snaps.append(sa)
        sb.time_ns = sa.time_ns + 7_000
        snaps.append(sb)
    return Sample(snaps)


def ts(ns: int, digits: int = 6) -> str:
    sec, frac = divmod(ns, 1_000_000_000)
    return f"{sec}.{frac // 10 ** (9 - digits):0{digits}d}"


def perf_script(sample: Sample, *, age: bool = True, spread_us: int = 1) -> str:
    """``perf script`` text; each event of a snapshot a microsecond after the previous."""
    lines = []
    for s in sample.snaps:
        for k, (start, end, nr, a) in enumerate(s.regions):
            t = s.time_ns + k * spread_us * 1000
            tail = f" {a}" if age else ""
            lines.append(
                f"       kdamond.0   516 [001] {ts(t):>13}: damon:damon_aggregated: "
                f"target_id={s.target} nr_regions={len(s.regions)} {start}-{end}: {nr}{tail}"
            )
    return "\n".join(lines) + "\n"


def tracefs(sample: Sample, *, flags: bool = True, pad: bool = False) -> str:
    """Kernel trace / trace-cmd text; ``flags=False`` is trace-cmd 3.2's form."""
    lines = ["# tracer: nop", "#", "cpus=2"]
    for s in sample.snaps:
        for start, end, nr, a in s.regions:
            flag = " d..1." if flags else ""
            gap = "     " if pad else " "
            lines.append(
                f"       kdamond.0-516     [001]{flag} {ts(s.time_ns)}: damon_aggregated:{gap}"
                f"target_id={s.target} nr_regions={len(s.regions)} {start}-{end}: {nr} {a}"
            )
    return "\n".join(lines) + "\n"


def before_apply(sample: Sample, *, scheme: int = 0) -> str:
    lines = []
    for s in sample.snaps:
        for start, end, nr, a in s.regions:
            lines.append(
                f"kdamond.0   516 [000] {ts(s.time_ns)}: damon:damos_before_apply: ctx_idx=0 "
                f"scheme_idx={scheme} target_idx={s.target} nr_regions={len(s.regions) + 2} "
                f"{start}-{end}: {nr} {a}"
            )
    return "\n".join(lines) + "\n"


def damo_json(sample: Sample, *, first_start: int | None = None) -> str:
    """damo's JSON structure with damo's string spellings ("4,096", "0 B")."""
    records = []
    for t in sample.targets():
        snaps = sample.of(t)
        out = []
        for i, s in enumerate(snaps):
            start = snaps[i - 1].time_ns if i else (first_start or s.time_ns - AGG_NS)
            out.append(
                {
                    "start_time": str(start),
                    "end_time": str(s.time_ns),
                    "regions": [
                        {
                            "start": f"{a:,}",
                            "end": f"{b:,}",
                            "nr_accesses": {"samples": nr, "percent": None},
                            "age": {"usec": None, "aggr_intervals": str(age)},
                            "probe_hits": [],
                            "sz_filter_passed": "0 B",
                        }
                        for a, b, nr, age in s.regions
                    ],
                    "total_bytes": str(sum(b - a for a, b, _, _ in s.regions)),
                    "damos_stats": None,
                    "sample_interval_us": None,
                }
            )
        records.append(
            {
                "kdamond_idx": 0,
                "context_idx": 0,
                "intervals": None,
                "scheme_idx": None,
                "target_id": t,
                "scheme_filters": [],
                "snapshots": out,
                "data_source": "unknown",
            }
        )
    return json.dumps(records, indent=4)


def damon_data(sample: Sample, *, version: int | None = 2) -> bytes:
    """Seed-era binary record; all targets of one timestamp in one record."""
    out = bytearray()
    if version is not None:
        out += b"damon_recfmt_ver" + struct.pack("<i", version)
    by_time: dict[int, list[Snap]] = {}
    for s in sample.snaps:
        by_time.setdefault(s.time_ns, []).append(s)
    for time_ns, snaps in by_time.items():
        out += struct.pack("<qqI", time_ns // 1_000_000_000, time_ns % 1_000_000_000, len(snaps))
        for s in snaps:
            out += struct.pack("<i" if version == 1 else "<Q", s.target)
            out += struct.pack("<I", len(s.regions))
            for start, end, nr, _age in s.regions:
                out += struct.pack("<QQI", start, end, nr)
    return bytes(out)


def write_all_formats(sample: Sample, directory: Path) -> dict[str, Path]:
    """The sample in every input format; keys name the variant."""
    files = {
        "perf_script": perf_script(sample).encode(),
        "perf_script_no_age": perf_script(sample, age=False).encode(),
        "tracefs": tracefs(sample).encode(),
        "tracefs_no_flags": tracefs(sample, flags=False).encode(),
        "tracefs_padded": tracefs(sample, flags=False, pad=True).encode(),
        "json": damo_json(sample).encode(),
        "json_compressed": zlib.compress(damo_json(sample).encode()),
        "damon_data_v2": damon_data(sample, version=2),
        "damon_data_v1": damon_data(sample, version=1),
        "damon_data_v0": damon_data(sample, version=None),
    }
    paths = {}
    for name, data in files.items():
        path = directory / f"{name}.rec"
        path.write_bytes(data)
        paths[name] = path
    return paths


# -- naive reference implementations (loops, straight from the definitions) ----


def reference_heatmap(
    spans: list[tuple[int, int, list[tuple[int, int, int, int]]]],
    tmin: int,
    tmax: int,
    amin: int,
    amax: int,
    tres: int,
    ares: int,
) -> list[list[float]]:
    """Seed/damo heat per pixel: sum(nr * dt * da) / (tunit * aunit); spans: (t0, t1, regions)."""
    tunit = (tmax - tmin) // tres
    aunit = (amax - amin) // ares
    grid = [[0.0] * ares for _ in range(tres)]
    for i in range(tres):
        p0, p1 = tmin + i * tunit, tmin + (i + 1) * tunit
        for t0, t1, regions in spans:
            dt = min(t1, p1) - max(t0, p0)
            if dt <= 0:
                continue
            for j in range(ares):
                q0, q1 = amin + j * aunit, amin + (j + 1) * aunit
                for start, end, nr, _ in regions:
                    da = min(end, q1) - max(start, q0)
                    if da > 0:
                        grid[i][j] += nr * dt * da
    return [[v / (tunit * aunit) for v in row] for row in grid]


def spans_of(sample: Sample, target: int) -> list[tuple[int, int, list]]:
    """(start, end, regions) per snapshot with damo's first-start rule."""
    snaps = sample.of(target)
    mean = (snaps[-1].time_ns - snaps[0].time_ns) / (len(snaps) - 1) if len(snaps) >= 2 else 0
    out = []
    for i, s in enumerate(snaps):
        start = snaps[i - 1].time_ns if i else round(s.time_ns - mean)
        out.append((start, s.time_ns, s.regions))
    return out
