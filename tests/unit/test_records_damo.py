"""Agreement with damo 3.4.3 (run as a subprocess) and the documented differences.

Each deliberate difference listed in docs/reports.md has a test here.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from record_samples import AGG_NS, Sample, Snap, perf_script

from damon_eval.records.heats import guides, heatmap_grid
from damon_eval.records.store import load_record
from damon_eval.records.writers import export_record
from damon_eval.records.wss import wss_distribution

DAMO = Path(sys.executable).parent / "damo"

pytestmark = [
    pytest.mark.skipif(not DAMO.exists(), reason="damo (test extra) is not installed in the venv"),
    pytest.mark.skipif(
        shutil.which("file") is None, reason="damo needs the 'file' command to read records"
    ),
]


def _file_shim(directory: Path) -> dict[str, str]:
    """PATH with a 'file' that says "JSON data" where file >= 5.4x says "JSON text data".

    damo 3.4.3 compares `file -b` output with the old string, so on current
    systems it cannot read plain JSON records at all (not our bug, see docs).
    """
    real = shutil.which("file")
    shim = directory / "file"
    shim.write_text(f'#!/bin/sh\n"{real}" "$@" | sed "s/^JSON text data$/JSON data/"\n')
    shim.chmod(0o755)
    env = dict(os.environ)
    env["PATH"] = f"{directory}:{env['PATH']}"
    return env


def damo(*args: str, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run([str(DAMO), *args], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def random_sample(n: int = 60, *, seed: int = 3, target: int = 0, t0: int = 5_000_000_000):
    """Regions with random boundaries (changing every snapshot) and random nr_accesses."""
    rng = np.random.default_rng(seed)
    base = 0x7F1234560000
    snaps = []
    for i in range(n):
        k = int(rng.integers(3, 12))
        cuts = np.sort(rng.choice(np.arange(1, 4096), k - 1, replace=False)) * 4096
        bounds = [0, *cuts.tolist(), 4096 * 4096]
        nrs = rng.integers(0, 8, k).tolist()
        regions = [
            (base + bounds[j], base + bounds[j + 1], nrs[j], int(rng.integers(0, 50)))
            for j in range(k)
        ]
        snaps.append(Snap(t0 + i * AGG_NS, target, regions))
    return Sample(snaps)


def damo_wss(text: str) -> dict[str, tuple[int, list[tuple[int, int]]]]:
    """{target: (average, [(percentile, wss)])} from ``damo report wss --raw_number``."""
    out: dict[str, tuple[int, list[tuple[int, int]]]] = {}
    target = None
    for line in text.splitlines():
        if line.startswith("# target_id"):
            target = line.split("\t")[1]
            out[target] = (0, [])
        elif line.startswith("# avr:"):
            out[target] = (int(line.split("\t")[1]), out[target][1])
        elif line and not line.startswith("#"):
            p, v = line.split()[:2]
            out[target][1].append((int(p), int(v)))
    return out


def ours_wss(record, percentiles, **kwargs):
    return {
        d.target: (int(d.average), [(p, d.percentile(p)) for p in percentiles])
        for d in wss_distribution(record, **kwargs)
    }


WSS_CASES = [
    ([], {}),
    (["--acc_thres", "3", "--sz_thres", "3000000"], {"acc_thres": 3, "sz_thres": 3000000}),
    (
        ["--exclude_samples", "5", "--sortby", "time", "--range", "0", "101", "10"],
        {"exclude_samples": 5, "sortby": "time"},
    ),
    (
        ["--work_time", "300000", "--exclude_samples", "4"],
        {"work_time_us": 300_000, "exclude_samples": 4},
    ),
]


@pytest.mark.parametrize(("damo_args", "kwargs"), WSS_CASES)
def test_wss_agrees_with_damo_on_perf_script(tmp_path, damo_args, kwargs):
    path = tmp_path / "r.perf"
    path.write_text(perf_script(random_sample()))
    args = ["report", "wss", "-i", str(path), "--raw_number", *damo_args]
    theirs = damo_wss(damo(*args))
    rng = [0, 101, 25]
    if "--range" in damo_args:
        i = damo_args.index("--range")
        rng = [int(x) for x in damo_args[i + 1 : i + 4]]
    ours = ours_wss(load_record(path), list(range(*rng)), **kwargs)
    assert ours == theirs


def test_wss_agrees_with_damo_on_our_json_exports(tmp_path):
    src = tmp_path / "r.perf"
    src.write_text(perf_script(random_sample(40)))
    record = load_record(src)
    want = ours_wss(record, [0, 25, 50, 75, 100])
    for fmt in ("json", "json_compressed"):
        out = tmp_path / f"r.{fmt}"
        export_record(record, out, fmt)
        text = damo("report", "wss", "-i", str(out), "--raw_number", env=_file_shim(tmp_path))
        assert damo_wss(text) == want, fmt
    # damo reads our perf_script export too.
    out = tmp_path / "again.perf"
    export_record(record, out, "perf_script")
    assert damo_wss(damo("report", "wss", "-i", str(out), "--raw_number")) == want


def test_we_read_what_damo_writes(tmp_path):
    src = tmp_path / "r.perf"
    src.write_text(perf_script(random_sample(30)))
    want = ours_wss(load_record(src), [0, 50, 100], exclude_samples=0)
    for fmt in ("json_compressed", "json", "perf_script"):
        out = tmp_path / f"damo.{fmt}"
        damo(
            "convert_record_format",
            "--record_file",
            str(src),
            "--format",
            fmt,
            "--output_file",
            str(out),
        )
        record = load_record(out)
        assert ours_wss(record, [0, 50, 100], exclude_samples=0) == want, fmt


def damo_heatmap(text: str, tres: int, ares: int) -> np.ndarray:
    values = [line.split("\t")[2] for line in text.splitlines() if line.strip()]
    assert len(values) == tres * ares
    grid = np.array([math.nan if v == "NaN" else float(v) for v in values])
    return grid.reshape(tres, ares)


def test_heatmap_cells_agree_with_damo(tmp_path):
    sample = random_sample(50)
    path = tmp_path / "r.perf"
    path.write_text(perf_script(sample))
    record = load_record(path)
    base = sample.snaps[0].regions[0][0]
    cases = [
        (20, 16, None, None),  # whole record; damo's 'hottest' = the only used range
        # Pixels shorter than a snapshot and tmin at a snapshot's end: damo then adds
        # no negative heat (see test_difference_no_negative_heat_before_the_time_range).
        (
            40,
            9,
            (sample.snaps[3].time_ns, sample.snaps[40].time_ns - 33_000_000),
            (base + 12345, base + 9_000_000),
        ),
    ]
    for tres, ares, times, addrs in cases:
        args = [
            "report",
            "heatmap",
            "-i",
            str(path),
            "--output",
            "raw",
            "--resol",
            str(tres),
            str(ares),
        ]
        kwargs = {}
        if times:
            args += ["--time_range", str(times[0]), str(times[1])]
            kwargs.update(tmin=times[0], tmax=times[1])
        if addrs:
            args += ["--address_range", str(addrs[0]), str(addrs[1])]
            kwargs.update(amin=addrs[0], amax=addrs[1])
        theirs = damo_heatmap(damo(*args), tres, ares)
        ours = heatmap_grid(record, tres=tres, ares=ares, **kwargs).grid
        np.testing.assert_allclose(ours, np.nan_to_num(theirs), rtol=1e-6, atol=1e-9)


# -- deliberate differences ---------------------------------------------------


def two_target_sample() -> Sample:
    a = random_sample(30, seed=5, target=0)
    b = random_sample(30, seed=6, target=1, t0=5_000_007_000)
    snaps = [s for pair in zip(a.snaps, b.snaps, strict=True) for s in pair]
    return Sample(snaps)


def test_difference_targets_reported_separately(tmp_path):
    path = tmp_path / "r.perf"
    path.write_text(perf_script(two_target_sample()))
    record = load_record(path)
    pct = [0, 25, 50, 75, 100]
    collapsed = damo_wss(damo("report", "wss", "-i", str(path), "--raw_number"))
    per_target = damo_wss(damo("report", "wss", "-i", str(path), "--raw_number", "--per_target"))
    assert set(collapsed) == {"0"} and set(per_target) == {"0", "1"}
    assert ours_wss(record, pct) == per_target  # our default: per target, as the seed
    assert ours_wss(record, pct, collapse_targets=True) == collapsed


def test_difference_default_heatmap_range_is_the_largest_not_the_hottest(tmp_path):
    # A large cold area and a small hot one, separated by a gap no snapshot covers.
    big, small = 0x10000000, 0x50000000
    snaps = [
        Snap(
            1_000_000_000 + i * AGG_NS,
            0,
            [(big, big + 64 * 4096, 1, 0), (small, small + 8 * 4096, 15, 0)],
        )
        for i in range(10)
    ]
    path = tmp_path / "r.perf"
    path.write_text(perf_script(Sample(snaps)))
    heatmap = heatmap_grid(load_record(path), tres=2, ares=4)
    assert (heatmap.amin, heatmap.amax) == (big, big + 64 * 4096)
    text = damo(
        "report", "heatmap", "-i", str(path), "--output", "raw", "--resol", "2", "4", "--abs_addr"
    )
    addrs = sorted({int(line.split("\t")[1]) for line in text.splitlines()})
    assert addrs[0] == small  # damo draws the hottest range by default
    # ...and so do we when asked (the pipeline's heatmaps do).
    hottest = heatmap_grid(load_record(path), tres=2, ares=4, draw_range="hottest")
    assert (hottest.amin, hottest.amax) == (small, small + 8 * 4096)
    assert hottest.grid.max() == pytest.approx(15)


def test_difference_guide_keeps_only_gaps_present_in_every_snapshot(tmp_path):
    lo = 0x10000
    snaps = [
        Snap(1_000_000_000, 0, [(lo, lo + 0x10000, 1, 0)]),
        Snap(1_100_000_000, 0, [(lo, lo + 0x1000, 1, 0), (lo + 0x8000, lo + 0x10000, 0, 0)]),
        Snap(1_200_000_000, 0, [(lo, lo + 0x1000, 1, 0), (lo + 0x8000, lo + 0x10000, 0, 0)]),
    ]
    path = tmp_path / "r.perf"
    path.write_text(perf_script(Sample(snaps)))
    (guide,) = guides(load_record(path))
    assert guide.ranges == ((lo, lo + 0x10000),)  # the "gap" was monitored in snapshot 1
    text = damo("report", "heatmap", "-i", str(path), "--guide")
    # damo's gap intersection restarts from the second snapshot's gaps.
    assert text.count("region\t") == 2


def test_difference_unobserved_pixels_are_zero_not_nan(tmp_path):
    sample = random_sample(10)
    path = tmp_path / "r.perf"
    path.write_text(perf_script(sample))
    base = sample.snaps[0].regions[0][0]
    hi = base + 4096 * 4096 + 4096  # one page above the highest region
    args = [
        "report",
        "heatmap",
        "-i",
        str(path),
        "--output",
        "raw",
        "--resol",
        "2",
        "4",
        "--address_range",
        str(hi),
        str(hi + 4 * 4096),
    ]
    theirs = damo_heatmap(damo(*args), 2, 4)
    assert np.isnan(theirs).all()
    ours = heatmap_grid(load_record(path), tres=2, ares=4, amin=hi, amax=hi + 4 * 4096).grid
    assert (ours == 0).all()


def test_difference_no_negative_heat_before_the_time_range(tmp_path):
    # Every region always has nr_accesses 5, so every covered pixel is 5.0 exactly.
    snaps = [Snap(1_000_000_000 + i * AGG_NS, 0, [(0x1000, 0x9000, 5, 0)]) for i in range(10)]
    path = tmp_path / "r.perf"
    path.write_text(perf_script(Sample(snaps)))
    # The range starts 10 ms after a snapshot's end, with pixels of 200 ms.
    tmin = snaps[2].time_ns + 10_000_000
    tmax = tmin + 3 * 200_000_000
    ours = heatmap_grid(
        load_record(path), tres=3, ares=2, tmin=tmin, tmax=tmax, amin=0x1000, amax=0x9000
    ).grid
    np.testing.assert_allclose(ours, 5.0)
    text = damo(
        "report",
        "heatmap",
        "-i",
        str(path),
        "--output",
        "raw",
        "--resol",
        "3",
        "2",
        "--time_range",
        str(tmin),
        str(tmax),
        "--address_range",
        "4096",
        "36864",
    )
    theirs = damo_heatmap(text, 3, 2)
    # damo adds the snapshot that ended 10 ms before tmin with a negative duration.
    assert (theirs[0] < 5.0 - 1e-9).all()
    np.testing.assert_allclose(theirs[1:], 5.0)


def test_difference_timestamps_are_exact_nanoseconds(tmp_path):
    text = (
        "kdamond.0 516 [001] 16544.267459: damon:damon_aggregated: "
        "target_id=0 nr_regions=1 4096-8192: 3 1\n"
        "kdamond.0 516 [001] 16544.367459: damon:damon_aggregated: "
        "target_id=0 nr_regions=1 4096-8192: 3 1\n"
    )
    path = tmp_path / "r.perf"
    path.write_text(text)
    ours = next(int(c.end_ns[0]) for c in load_record(path).chunks())
    assert ours == 16544_267459000
    out = tmp_path / "damo.jz"
    damo(
        "convert_record_format",
        "--record_file",
        str(path),
        "--format",
        "json_compressed",
        "--output_file",
        str(out),
    )
    theirs = load_record(out)
    damo_end = next(int(c.end_ns[0]) for c in theirs.chunks())
    assert damo_end == int(float("16544.267459") * 1e9) == ours - 1  # float rounding in damo


def test_difference_heat_unit_is_nr_accesses_not_hz(tmp_path):
    sample = Sample(
        [Snap(1_000_000_000 + i * AGG_NS, 0, [(0x1000, 0x5000, 4, 0)]) for i in range(6)]
    )
    path = tmp_path / "r.perf"
    path.write_text(perf_script(sample))
    record = load_record(path)
    out = tmp_path / "r.json"
    export_record(record, out, "json")
    # A record that states its intervals: damo then reports heat in Hz (per second).
    doc = out.read_text().replace(
        '"intervals": null',
        '"intervals": {"sample_us": 5000, "aggr_us": 100000, "ops_update_us": 1000000}',
    )
    jz = tmp_path / "r.jz"
    jz.write_bytes(zlib.compress(doc.encode()))
    ours = heatmap_grid(load_record(jz), tres=2, ares=2).grid
    np.testing.assert_allclose(ours, 4.0)
    text = damo("report", "heatmap", "-i", str(jz), "--output", "raw", "--resol", "2", "2")
    np.testing.assert_allclose(damo_heatmap(text, 2, 2), 40.0)
