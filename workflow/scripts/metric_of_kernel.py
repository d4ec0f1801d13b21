"""Adapter: one metric's table and overhead plot of one kernel of a kernels: campaign."""

from pathlib import Path
from typing import TYPE_CHECKING

from damon_eval.pipeline import metric_step, run_logged

if TYPE_CHECKING:
    from snakemake.script import snakemake

run_logged(
    snakemake.log[0],
    metric_step,
    snakemake.input.runs,
    snakemake.wildcards.metric,
    Path(snakemake.output.text).parents[2],
    snakemake.params.configs,
    snakemake.wildcards.kernel,
    True,
)
