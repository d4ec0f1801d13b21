"""Adapter: one metric's table and overhead plot."""

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
    Path(snakemake.output.text).parent.parent,
    snakemake.params.configs,
    snakemake.params.kernel,
)
