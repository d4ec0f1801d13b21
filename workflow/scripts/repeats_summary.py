"""Adapter: the last round of repeats: auto -> results/summary/repeats.{csv,html}."""

from typing import TYPE_CHECKING

from damon_eval.pipeline import repeats_summary_step, run_logged

if TYPE_CHECKING:
    from snakemake.script import snakemake

run_logged(
    snakemake.log[0],
    repeats_summary_step,
    snakemake.input.last_round,
    snakemake.output.csv,
    snakemake.output.html,
)
