"""Adapter: one round of repeats: auto -> results/repeats/round-<n>.json."""

from typing import TYPE_CHECKING

from damon_eval.pipeline import repeats_round_step, run_logged

if TYPE_CHECKING:
    from snakemake.script import snakemake

run_logged(
    snakemake.log[0],
    repeats_round_step,
    list(snakemake.input.results),
    dict(snakemake.params.rule),
    int(snakemake.wildcards.round),
    snakemake.output.decisions,
)
