"""Adapter: the provenance page of the report."""

from typing import TYPE_CHECKING

from damon_eval.pipeline import provenance_step, run_logged

if TYPE_CHECKING:
    from snakemake.script import snakemake

run_logged(
    snakemake.log[0],
    provenance_step,
    snakemake.input.campaign,
    list(snakemake.input.results),
    snakemake.output.page,
)
