# The guest image every run boots (cached outside the repository).


rule guest_image:
    output:
        manifest=f"{RESULTS}/guest/image.json",
    log:
        f"{RESULTS}/logs/guest_image.log",
    params:
        spec=CAMPAIGN.settings["guest"]["spec"],
    conda:
        "../envs/damon-eval.yaml"
    shell:
        "damon-eval guest build --spec {params.spec} --manifest {output.manifest} > {log} 2>&1"
