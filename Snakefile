# damon-eval pipeline: wiring only; rules live in workflow/rules/*.smk.
from snakemake.utils import min_version

min_version("9.0")


include: "workflow/rules/common.smk"


rule all:
    default_target: True
    input:
        all_targets(),
