"""Adapter: fail the pipeline when no run of the campaign succeeded."""

from typing import TYPE_CHECKING

from damon_eval.pipeline import outcome_step, run_logged

if TYPE_CHECKING:
    from snakemake.script import snakemake

run_logged(snakemake.log[0], outcome_step, snakemake.input.failures, snakemake.output.outcome)
