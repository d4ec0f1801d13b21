# damon-eval pipeline: wiring only.  Rules live in workflow/rules/*.smk; all
# logic lives in the damon_eval package.  See docs/pipeline.md.
from snakemake.utils import min_version

min_version("9.0")


include: "workflow/rules/common.smk"
include: "workflow/rules/guest.smk"
include: "workflow/rules/repeats.smk"
include: "workflow/rules/run.smk"
include: "workflow/rules/analyze.smk"


report: "workflow/report/workflow.rst"


rule all:
    default_target: True
    input:
        all_run_results(),
        all_analysis_targets(),
        f"{SUMMARY}/outcome.txt",
