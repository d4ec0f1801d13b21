"""Adapter: heatmap, WSS plots and accuracy of one run's DAMON record."""

from pathlib import Path
from typing import TYPE_CHECKING

from damon_eval.pipeline import record_step, run_logged

if TYPE_CHECKING:
    from snakemake.script import snakemake

run_logged(
    snakemake.log[0], record_step, snakemake.input.result, Path(snakemake.output.heatmap).parent
)
