# repeats: auto (docs/pipeline.md, "repeats: auto"): runs come in rounds.  Round 1 is
# the campaign's planned runs (min_repeats per cell); after each round the
# repeats_round checkpoint decides, from the results so far, which cells get one
# more repeat; Snakemake re-evaluates the DAG and schedules them.  collect's input
# walks the rounds until one asks for nothing more.
# The input functions that walk the rounds are in common.smk.


if AUTO_REPEATS is not None:

    checkpoint repeats_round:
        input:
            results=lambda wildcards: [
                run_result(key) for key in runs_through_round(int(wildcards.round))
            ],
        output:
            decisions=f"{RESULTS}/repeats/round-{{round}}.json",
        log:
            f"{RESULTS}/logs/repeats/round-{{round}}.log",
        params:
            rule={
                "min_repeats": AUTO_REPEATS.min_repeats,
                "max_repeats": AUTO_REPEATS.max_repeats,
                "target_rel_half_width": AUTO_REPEATS.target_rel_half_width,
                "metric": AUTO_REPEATS.metric,
            },
        wildcard_constraints:
            round=r"[1-9][0-9]*",
        conda:
            "../envs/damon-eval.yaml"
        script:
            "../scripts/repeats_round.py"

    rule repeats_summary:
        input:
            last_round=lambda wildcards: f"{RESULTS}/repeats/round-{last_round()}.json",
        output:
            csv=f"{SUMMARY}/repeats.csv",
            html=report(
                f"{SUMMARY}/repeats.html",
                caption="../report/repeats.rst",
                category="6. Repeats",
            ),
        log:
            f"{RESULTS}/logs/repeats_summary.log",
        conda:
            "../envs/damon-eval.yaml"
        script:
            "../scripts/repeats_summary.py"
