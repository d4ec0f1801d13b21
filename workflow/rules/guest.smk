# Checks that must pass before any guest boots, and the guest image every run
# boots (cached outside the repository).


rule check_campaign:
    input:
        # ancient(): a changed campaign does not re-check (each run checks its own
        # workload before booting); see docs/pipeline.md.
        campaign=ancient(CAMPAIGN_JSON),
    output:
        checked=f"{RESULTS}/campaign.checked",
    log:
        f"{RESULTS}/logs/check_campaign.log",
    conda:
        "../envs/damon-eval.yaml"
    shell:
        "damon-eval campaign check {input.campaign} > {output.checked} 2> {log}"


rule guest_image:
    input:
        checked=rules.check_campaign.output.checked,
    output:
        manifest=IMAGE_MANIFEST,
    log:
        f"{RESULTS}/logs/guest_image{'-{kernel}' if KERNELS else ''}.log",
    params:
        spec=GUEST_SPEC,
        kernel=guest_kernel_option,
    conda:
        "../envs/damon-eval.yaml"
    shell:
        "damon-eval guest build --spec {params.spec} {params.kernel} "
        "--manifest {output.manifest} > {log} 2>&1"


# PARSEC campaigns: the packages are built once before any run (on the host in
# a chroot of the image, or in the guest's saved state; parsec.build).
HAS_PARSEC = any(w.startswith(("parsec3/", "splash2x/")) for w in CAMPAIGN.workloads)


# (kernels: campaigns have no PARSEC workloads: the campaign's validation says so.)
if not KERNELS:

    rule parsec_build:
        input:
            image=rules.guest_image.output.manifest,
        output:
            summary=f"{RESULTS}/guest/parsec-build.json",
        log:
            f"{RESULTS}/logs/parsec_build.log",
        params:
            campaign=CAMPAIGN_JSON,
        conda:
            "../envs/damon-eval.yaml"
        shell:
            "damon-eval parsec build {params.campaign} --summary {output.summary} > {log} 2>&1"
