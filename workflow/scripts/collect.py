"""Adapter: the campaign's planned runs -> results/summary/runs.csv."""

from typing import TYPE_CHECKING

from damon_eval.pipeline import collect_step, run_logged

if TYPE_CHECKING:
    from snakemake.script import snakemake

run_logged(
    snakemake.log[0],
    collect_step,
    list(snakemake.input.results),
    snakemake.output.runs,
)
