"""Adapter: headline sentences and the comparison with the published tables."""

from pathlib import Path
from typing import TYPE_CHECKING

from damon_eval.pipeline import run_logged, summary_step

if TYPE_CHECKING:
    from snakemake.script import snakemake

run_logged(
    snakemake.log[0],
    summary_step,
    snakemake.input.runs,
    Path(snakemake.output.headlines).parent,
    snakemake.params.configs,
    snakemake.params.campaign,
    snakemake.params.kernel,
)
