"""Adapter: one metric's table and overhead plot, of the base kernel (rule metric) or of
one kernel of a kernels: campaign (rule metric_of_kernel)."""

from typing import TYPE_CHECKING

from damon_eval.pipeline import metric_step, run_logged

if TYPE_CHECKING:
    from snakemake.script import snakemake

run_logged(
    snakemake.log[0],
    metric_step,
    snakemake.input.runs,
    snakemake.wildcards.metric,
    snakemake.params.summary,
    snakemake.params.configs,
    snakemake.params.kernel,
    snakemake.params.per_kernel,
)
