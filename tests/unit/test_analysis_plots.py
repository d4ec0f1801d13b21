"""Plots are written, non-trivial and deterministic."""

from __future__ import annotations

import matplotlib.image
import numpy as np
import pytest
from results_factory import CampaignSpec, write_campaign

from damon_eval.analysis.plots import plot_table
from damon_eval.analysis.runtable import collect_runs
from damon_eval.analysis.tables import build_table


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    write_campaign(
        root, CampaignSpec(workloads=("synthetic/hotcold", "parsec3/freqmine"), repeats=3)
    )
    return collect_runs(root)


@pytest.mark.parametrize("metric", ["runtime", "kdamond_cpu_util"])
def test_plot_files(runs, tmp_path, metric):
    table = build_table(runs, metric)
    png, svg = plot_table(table, tmp_path / metric)
    assert png.stat().st_size > 20_000
    pixels = matplotlib.image.imread(png)
    assert pixels.shape[0] >= 400 and pixels.shape[1] >= 600
    assert float(np.std(pixels[..., :3])) > 0.05  # not a blank canvas
    # bars in the palette's colours are drawn (orange of 'rec')
    orange = np.all(np.abs(pixels[..., :3] - np.array([0xE6, 0x9F, 0x00]) / 255) < 0.02, axis=-1)
    assert orange.sum() > 100
    text = svg.read_text()
    assert "synthetic/hotcold" in text
    assert "total" in text or "average" in text
    assert "configuration" in text


def test_plots_are_deterministic(runs, tmp_path):
    table = build_table(runs, "memused.avg")
    first = [p.read_bytes() for p in plot_table(table, tmp_path / "a")]
    second = [p.read_bytes() for p in plot_table(table, tmp_path / "b")]
    assert first == second
    assert b"Matplotlib" not in first[0]  # no software/version metadata in the PNG
