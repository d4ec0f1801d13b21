# One measured run per job: boot a fresh guest, apply the configuration, run
# the workload, sample, write result.json.  `vm` serialises guests (default 1),
# priorities make Snakemake follow the campaign's interleaved or shuffled order.


rule run:
    input:
        # ancient(): an edited configuration never reruns completed (protected)
        # runs; delete a run's result.json to redo it (docs/pipeline.md).
        images=[ancient(manifest) for manifest in RUN_IMAGE_MANIFESTS],
        configuration=ancient("configs/configurations/{config}.yaml"),
        parsec=[ancient(rules.parsec_build.output.summary)] if HAS_PARSEC else [],
    output:
        result=protected(f"{RESULTS}/runs/{RUN_WILDCARDS}/result.json"),
    log:
        f"{RESULTS}/logs/run/{RUN_WILDCARDS}.log",
    params:
        campaign=CAMPAIGN_JSON,
        run=RUN_WILDCARDS,
        max_attempts=CAMPAIGN.settings["max_attempts"],
    resources:
        vm=1,
        attempt=attempt_number,
    priority: run_priority
    retries: CAMPAIGN.settings["max_attempts"] - 1
    conda:
        "../envs/damon-eval.yaml"
    shell:
        "damon-eval run --campaign {params.campaign} --run {params.run}"
        " --attempt {resources.attempt} --max-attempts {params.max_attempts} --failed-ok"
        " --out {output.result} > {log} 2>&1"


# One target per configuration: `snakemake --cores 2 runs_prcl` executes only
# the prcl runs of the campaign (with repeats: auto, of all its rounds).
for _config_name in CAMPAIGN.configs:

    rule:
        name:
            f"runs_{_config_name}"
        input:
            campaign_run_results_of_config(_config_name),
        default_target: False
