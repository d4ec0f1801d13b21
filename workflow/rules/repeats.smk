# repeats: auto (docs/pipeline.md, "repeats: auto"): runs come in rounds.  Round 1 is
# the campaign's planned runs (min_repeats per cell); after each round the
# repeats_round checkpoint decides, from the results so far, which cells get one
# more repeat; Snakemake re-evaluates the DAG and schedules them.  collect's input
# walks the rounds until one asks for nothing more.
AUTO_REPEATS = CAMPAIGN.auto_repeats


def run_key(run_id):
    from damon_eval.campaign import RunKey

    suite, workload, config, repeat = run_id.split("/")
    return RunKey(suite, workload, config, int(repeat))


def round_decisions(number):
    """Round ``number``'s decisions; raises Snakemake's 'incomplete checkpoint' until it ran."""
    path = checkpoints.repeats_round.get(round=number).output.decisions
    return json.loads(Path(path).read_text())


def runs_through_round(number):
    """Run keys of rounds 1 .. ``number``: the runs round ``number``'s checkpoint decides from.
    Round 1 is the planned runs; round k + 1 the runs round k's decisions name."""
    keys = list(RUNS)
    for earlier in range(1, number):
        keys += [run_key(run_id) for run_id in round_decisions(earlier)["next_runs"]]
    return keys


def last_round():
    number = 1
    while round_decisions(number)["next_runs"]:
        number += 1
    return number


def campaign_run_keys():
    """Every run of the campaign: the planned ones, or all rounds of repeats: auto."""
    if AUTO_REPEATS is None:
        return list(RUNS)
    return runs_through_round(last_round())  # the last round names no more runs


def campaign_run_results(wildcards=None):
    return [run_result(key) for key in campaign_run_keys()]


def campaign_run_results_of_config(config_name):
    return lambda wildcards: [
        run_result(key) for key in campaign_run_keys() if key.config == config_name
    ]


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
