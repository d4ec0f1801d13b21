"""Adapter: a kernels: campaign's kernel comparison (each later kernel against the first)."""

from pathlib import Path
from typing import TYPE_CHECKING

from damon_eval.pipeline import kernel_ab_step, run_logged

if TYPE_CHECKING:
    from snakemake.script import snakemake

run_logged(
    snakemake.log[0],
    kernel_ab_step,
    snakemake.input.runs,
    Path(snakemake.output.html).parent,
    snakemake.params.base,
    snakemake.params.others,
    snakemake.params.configs,
)
