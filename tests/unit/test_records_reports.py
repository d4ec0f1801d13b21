"""raw, heats (text, guide, image) and wss reports on records with known patterns."""

from __future__ import annotations

import numpy as np
import pytest
from record_samples import (
    AGG_NS,
    MiB,
    Sample,
    Snap,
    damon_data,
    moving_hot,
    perf_script,
    reference_heatmap,
    spans_of,
    two_targets,
    write_all_formats,
)

from damon_eval.cli import main
from damon_eval.errors import ConfigError
from damon_eval.records.heats import guide_lines, guides, heatmap_grid, plot_heatmap
from damon_eval.records.raw import raw_lines
from damon_eval.records.store import load_record
from damon_eval.records.wss import wss_distribution, wss_lines

# The seed's usage.rst example of ``damo report raw`` (tabs as the seed's tool printed them).
SEED_RAW = """\
start_time:  193485829398
rel time:                0
nr_tasks:  1
pid:  1348
nr_regions:  4
560189609000-56018abce000(  22827008):\t0
7fbdff59a000-7fbdffaf1a00(   5601792):\t0
7fbdffaf1a00-7fbdffbb5000(    800256):\t1
7ffea0dc0000-7ffea0dfd000(    249856):\t0

rel time:        100000731
nr_tasks:  1
pid:  1348
nr_regions:  6
560189609000-56018abce000(  22827008):\t0
7fbdff59a000-7fbdff8ce933(   3361075):\t0
7fbdff8ce933-7fbdffaf1a00(   2240717):\t1
7fbdffaf1a00-7fbdffb66d99(    480153):\t0
7fbdffb66d99-7fbdffbb5000(    320103):\t1
7ffea0dc0000-7ffea0dfd000(    249856):\t0
"""

SEED_DOC_RAW = """\
    start_time:  193485829398
    rel time:                0
    nr_tasks:  1
    pid:  1348
    nr_regions:  4
    560189609000-56018abce000(  22827008):  0
    7fbdff59a000-7fbdffaf1a00(   5601792):  0
"""


def _seed_sample() -> Sample:
    def regions(text):
        out = []
        for line in text.strip().splitlines():
            rng, nr = line.split("):")
            start, end = rng.split("(")[0].split("-")
            out.append((int(start, 16), int(end, 16), int(nr), 0))
        return out

    blocks = SEED_RAW.split("\n\n")
    first = regions("\n".join(blocks[0].splitlines()[5:]))
    second = regions("\n".join(blocks[1].splitlines()[4:]))
    return Sample([Snap(193485829398, 1348, first), Snap(193485829398 + 100000731, 1348, second)])


def test_raw_reproduces_the_seed_example(tmp_path):
    path = tmp_path / "damon.data"
    path.write_bytes(damon_data(_seed_sample(), version=1))
    text = "\n".join(raw_lines(load_record(path))) + "\n"
    assert text == SEED_RAW + "\n"
    # As the seed document shows it (tabs expanded).
    doc = "\n".join("    " + line.expandtabs() for line in text.splitlines()[:7]) + "\n"
    assert doc == SEED_DOC_RAW


def test_raw_groups_targets_of_one_timestamp(tmp_path):
    sample = two_targets()
    for snap in sample.snaps:  # the binary format stamps all tasks of a record at once
        snap.time_ns -= snap.time_ns % AGG_NS
    path = tmp_path / "damon.data"
    path.write_bytes(damon_data(sample))
    lines = list(raw_lines(load_record(path)))
    assert lines[2] == "nr_tasks:  2"
    assert lines[3] == "pid:  0" and lines.count("pid:  1") == 6


def test_heats_grid_matches_the_definition_in_every_format(tmp_path):
    sample = moving_hot(20)
    spans = spans_of(sample, 0)
    base = sample.snaps[0].regions[0][0]
    tmin, tmax = spans[0][0], spans[-1][1]
    want = reference_heatmap(spans, tmin, tmax, base, base + 4 * MiB, 10, 8)
    for name, path in write_all_formats(sample, tmp_path).items():
        heatmap = heatmap_grid(load_record(path), tres=10, ares=8)
        assert (heatmap.tmin, heatmap.amin) == (tmin, base), name
        np.testing.assert_allclose(heatmap.grid, np.array(want), rtol=1e-12, err_msg=name)
    # Hot region k for snapshots 5k..5k+4: pixel rows 2k.. are hot in columns 2k, 2k+1.
    assert heatmap.grid[0].tolist() == [10.0, 10.0, 0, 0, 0, 0, 0, 0]
    assert heatmap.grid[9].tolist() == [0, 0, 0, 0, 0, 0, 10.0, 10.0]


def test_heats_partial_pixels_and_explicit_bounds(tmp_path):
    sample = moving_hot(20)
    path = tmp_path / "r.perf"
    path.write_text(perf_script(sample))
    record = load_record(path)
    spans = spans_of(sample, 0)
    base = sample.snaps[0].regions[0][0]
    # Bounds that cut snapshots and regions in the middle of pixels.
    tmin = spans[3][0] + 30_000_000
    tmax = spans[17][1] - 10_000_000
    amin, amax = base + MiB // 3, base + 3 * MiB + 12345
    heatmap = heatmap_grid(record, tres=7, ares=5, tmin=tmin, tmax=tmax, amin=amin, amax=amax)
    want = reference_heatmap(spans, tmin, tmax, amin, amax, 7, 5)
    np.testing.assert_allclose(heatmap.grid, np.array(want), rtol=1e-12)
    with pytest.raises(ConfigError, match="narrower than --tres"):
        heatmap_grid(record, tres=10, tmin=tmin, tmax=tmin + 5)


def test_guide_is_the_union_of_regions_minus_common_gaps(tmp_path):
    # Target 7: two areas; the gap between them is unmonitored in every snapshot,
    # the hole inside the first area is monitored in one snapshot only.
    lo, hi = 0x10000, 0x90000
    snaps = [
        Snap(
            1_000_000_000,
            7,
            [(lo, lo + 0x1000, 1, 0), (lo + 0x3000, lo + 0x8000, 0, 0), (hi, hi + 0x2000, 3, 0)],
        ),
        Snap(1_100_000_000, 7, [(lo, lo + 0x8000, 2, 0), (hi, hi + 0x2000, 0, 0)]),
        Snap(
            1_200_000_000, 7, [(lo + 0x1000, lo + 0x8000, 0, 0), (hi + 0x1000, hi + 0x4000, 0, 0)]
        ),
    ]
    path = tmp_path / "r.perf"
    path.write_text(perf_script(Sample(snaps)))
    record = load_record(path)
    (guide,) = guides(record)
    assert guide.ranges == ((lo, lo + 0x8000), (hi, hi + 0x4000))
    assert (guide.start_ns, guide.end_ns) == (900_000_000, 1_200_000_000)
    assert list(guide_lines(record)) == [
        "target_id:7",
        "time: 900000000-1200000000 (300000000)",
        f"region\t 0: {lo:020d}-{lo + 0x8000:020d} (32768)",
        f"region\t 1: {hi:020d}-{hi + 0x4000:020d} (16384)",
    ]
    # Without bounds the largest used range is drawn (the seed's rule).
    heatmap = heatmap_grid(record, tres=3, ares=8)
    assert (heatmap.amin, heatmap.amax) == (lo, lo + 0x8000)


def test_default_target_uses_most_space_and_target_option(tmp_path):
    path = tmp_path / "r.perf"
    path.write_text(perf_script(two_targets()))
    record = load_record(path)
    assert [record.info.targets[g.target].target_id for g in guides(record)] == [0, 1]
    assert heatmap_grid(record, tres=2, ares=2).target == 0
    assert heatmap_grid(record, tres=2, ares=2, target="1").target == 1
    with pytest.raises(ConfigError, match=r"no target '5' \(valid: 0, 1\)"):
        heatmap_grid(record, target="5")


def test_heats_text_output_is_the_seed_form(tmp_path, capsys):
    path = tmp_path / "r.perf"
    path.write_text(perf_script(moving_hot(20)))
    assert main(["report", "heats", "-i", str(path), "--tres", "3", "--ares", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 9
    tunit = 20 * AGG_NS // 3
    aunit = 4 * MiB // 3
    assert [ln.split("\t")[:2] for ln in lines[:4]] == [
        ["0", "0"],
        ["0", str(aunit)],
        ["0", str(2 * aunit)],
        [str(tunit), "0"],
    ]
    assert all(float(ln.split("\t")[2]) >= 0 for ln in lines)


def test_heatmap_image_shows_the_hot_band_where_the_pattern_put_it(tmp_path):
    import matplotlib.image

    # Region 1 of 4 (the second quarter of the address range) is hot all the time.
    snaps = [
        Snap(
            1_000_000_000 + i * AGG_NS,
            0,
            [(0x100000 * k, 0x100000 * (k + 1), 20 if k == 1 else 0, 0) for k in range(4)],
        )
        for i in range(30)
    ]
    path = tmp_path / "r.perf"
    path.write_text(perf_script(Sample(snaps)))
    heatmap = heatmap_grid(load_record(path), tres=30, ares=40)
    image_path = tmp_path / "heat.png"
    geometry = plot_heatmap(heatmap, image_path)
    pixels = matplotlib.image.imread(image_path)
    assert pixels.shape[:2] == (geometry.height, geometry.width)
    # Brightness per image row inside the data area, averaged over its width.
    left, right = int(geometry.left) + 3, int(geometry.right) - 3
    top, bottom = int(geometry.top) + 3, int(geometry.bottom) - 3
    brightness = pixels[top:bottom, left:right, :3].mean(axis=(1, 2))
    # Rows from the bottom (low addresses) up: fraction of the height.
    height = bottom - top
    frac = 1 - (np.arange(height) + 0.5) / height
    hot = brightness > (brightness.max() + brightness.min()) / 2
    assert hot.any()
    assert frac[hot].min() > 0.25 - 0.03 and frac[hot].max() < 0.5 + 0.03
    assert not hot[(frac < 0.22) | (frac > 0.53)].any()
    for ext in ("pdf", "svg", "jpeg"):
        plot_heatmap(heatmap, tmp_path / f"heat.{ext}")
        assert (tmp_path / f"heat.{ext}").stat().st_size > 1000
    with pytest.raises(ConfigError, match=r"valid extensions: \.png"):
        plot_heatmap(heatmap, tmp_path / "heat.gif")


def _wss_sample() -> Sample:
    """Snapshot i: regions of 1, 2, 4, 8 KiB; accessed ones follow i's low bits."""
    snaps = []
    for i in range(30):
        regions = []
        addr = 0x1000
        for k in range(4):
            size = 1024 << k
            regions.append((addr, addr + size, (i >> k) & 1, 0))
            addr += size
        snaps.append(Snap(1_000_000_000 + i * AGG_NS, 0, regions))
    return Sample(snaps)


def test_wss_values_percentiles_and_average(tmp_path):
    sample = _wss_sample()
    for name, path in write_all_formats(sample, tmp_path).items():
        record = load_record(path)
        (dist,) = wss_distribution(record)
        # Snapshots 20..29: wss = 1024 * (i mod 16) for the first four bits.
        want = sorted(1024 * (i % 16) for i in range(20, 30))
        assert dist.values.tolist() == want, name
        assert dist.average == sum(want) / 10
        assert [dist.percentile(p) for p in (0, 25, 50, 75, 100)] == [
            want[0],
            want[2],
            want[5],
            want[7],
            want[9],
        ]
    (by_time,) = wss_distribution(record, sortby="time", exclude_samples=0)
    assert by_time.values.tolist() == [1024 * (i % 16) for i in range(30)]
    (big_only,) = wss_distribution(record, sz_thres=4096, exclude_samples=0)
    assert sorted(big_only.values.tolist()) == sorted(
        4096 * ((i >> 2) & 1) + 8192 * ((i >> 3) & 1) for i in range(30)
    )
    lines = list(wss_lines(record, [dist], [0, 50, 100]))
    assert lines == [
        "# <percentile> <wss>",
        "# pid\t0",
        f"# avr:\t{int(sum(want) / 10)}",
        f"0\t{want[0]}",
        f"50\t{want[5]}",
        f"100\t{want[9]}",
    ]


def test_wss_work_time_merges_snapshots_like_damo(tmp_path):
    # Two snapshots per 200 ms window.  Window 1: snapshot A has [0,4K):0 [4K,8K):1;
    # snapshot B has [0,2K):3 [2K,12K):0.  damo keeps A's regions, adds the largest
    # overlapping nr of B to each ([0,4K): 0+3, [4K,8K): 1+0) and appends the part of
    # B not covered by A ([8K,12K): 0).  wss = 8K.
    a = [(0, 4096, 0, 0), (4096, 8192, 1, 0)]
    b = [(0, 2048, 3, 0), (2048, 12288, 0, 0)]
    snaps = [Snap(1_000_000_000 + i * AGG_NS, 0, a if i % 2 == 0 else b) for i in range(6)]
    path = tmp_path / "r.perf"
    path.write_text(perf_script(Sample(snaps)))
    record = load_record(path)
    (dist,) = wss_distribution(record, exclude_samples=0, work_time_us=200_000, sortby="time")
    # The first snapshot's start is end - 100 ms, so windows are (0,1), (2,3), (4,5).
    assert dist.values.tolist() == [8192, 8192, 8192]
    (dist,) = wss_distribution(record, exclude_samples=1, work_time_us=200_000, sortby="time")
    # From snapshot 1 (B first): B keeps [0,2K):3+0, [2K,12K):0+1 -> 12K; last window dropped.
    assert dist.values.tolist() == [12288, 12288]


def test_wss_targets_separate_or_collapsed(tmp_path):
    path = tmp_path / "r.perf"
    path.write_text(perf_script(two_targets()))
    record = load_record(path)
    per_target = wss_distribution(record, exclude_samples=0, sortby="time")
    assert [d.target for d in per_target] == ["0", "1"]
    (collapsed,) = wss_distribution(record, exclude_samples=0, sortby="time", collapse_targets=True)
    assert collapsed.values.tolist() == (per_target[0].values + per_target[1].values).tolist()


def test_wss_cli_and_plot(tmp_path, capsys):
    path = tmp_path / "r.perf"
    path.write_text(perf_script(_wss_sample()))
    assert main(["report", "wss", "-i", str(path), "--range", "0", "101", "50"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "# <percentile> <wss>" and out[1] == "# target_id\t0"
    assert [ln.split("\t")[0] for ln in out[3:]] == ["0", "50", "100"]
    plot = tmp_path / "wss.png"
    assert main(["report", "wss", "-i", str(path), "--plot", str(plot), "--sortby", "time"]) == 0
    assert plot.stat().st_size > 1000
    assert main(["report", "wss", "-i", str(path), "--exclude-samples", "100"]) == 0
    assert "# no snapshot" in capsys.readouterr().out


def test_heats_cli_guide_and_image(tmp_path, capsys):
    path = tmp_path / "damon.data"
    path.write_bytes(damon_data(moving_hot(10)))
    assert main(["report", "heats", "-i", str(path), "--guide"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "pid:0" and out[1].startswith("time: ") and out[2].startswith("region\t 0: ")
    image = tmp_path / "h.svg"
    args = ["report", "heats", "-i", str(path), "--heatmap", str(image), "--tres", "10"]
    assert main(args) == 0
    assert image.read_text().lstrip().startswith("<?xml")
    assert main(["report", "heats", "-i", str(path), "--heatmap", str(tmp_path / "h.bmp")]) == 2
    assert "valid extensions" in capsys.readouterr().err


def test_library_functions_accept_paths_and_give_tables(tmp_path):
    from damon_eval.records import wss_dataframe

    path = tmp_path / "r.perf"
    path.write_text(perf_script(_wss_sample()))
    dists = wss_distribution(path, exclude_samples=0)
    frame = wss_dataframe(dists, [0, 50, 100])
    assert frame.columns.tolist() == ["target", "percentile", "wss"]
    assert frame["wss"].tolist() == [dists[0].percentile(p) for p in (0, 50, 100)]
    assert frame.attrs["average"] == {"0": dists[0].average}
    heatmap = heatmap_grid(str(path), tres=4, ares=4)
    assert heatmap.times().tolist() == [heatmap.tmin + i * heatmap.tunit for i in range(4)]
    assert heatmap.addrs() == [heatmap.amin + j * heatmap.aunit for j in range(4)]
