# Analysis: cheap, deterministic jobs that run in parallel once the runs exist.


rule collect:
    input:
        results=campaign_run_results,
    output:
        runs=f"{SUMMARY}/runs.csv",
    log:
        f"{RESULTS}/logs/collect.log",
    conda:
        "../envs/damon-eval.yaml"
    script:
        "../scripts/collect.py"


rule metric:
    input:
        runs=rules.collect.output.runs,
    output:
        text=f"{SUMMARY}/tables/{{metric}}.txt",
        stats=f"{SUMMARY}/tables/{{metric}}.stats.txt",
        csv=f"{SUMMARY}/tables/{{metric}}.csv",
        html=report(
            f"{SUMMARY}/tables/{{metric}}.html",
            caption="../report/table.rst",
            category="1. Tables",
            labels={"metric": "{metric}"},
        ),
        png=report(
            f"{SUMMARY}/plots/{{metric}}.png",
            caption="../report/plot.rst",
            category="3. Overhead plots",
            labels={"metric": "{metric}", "format": "png"},
        ),
        svg=f"{SUMMARY}/plots/{{metric}}.svg",
    log:
        f"{RESULTS}/logs/metric/{{metric}}.log",
    params:
        # The summary directory, from the output so the rule runs without a shared FS.
        summary=lambda wildcards, output: Path(output.text).parents[1],
        configs=CAMPAIGN.configs,
        kernel=BASE_KERNEL,
        per_kernel=False,
    wildcard_constraints:
        metric=r"[a-z_]+(\.[a-z_]+)?",
    conda:
        "../envs/damon-eval.yaml"
    script:
        "../scripts/metric.py"


# kernels: campaigns: every kernel's own configuration tables and plots (the base
# kernel's are also the main ones above); runs of two kernels never share a table.
if KERNELS:

    rule metric_of_kernel:
        input:
            runs=rules.collect.output.runs,
        output:
            text=f"{SUMMARY}/tables/{{kernel}}/{{metric}}.txt",
            stats=f"{SUMMARY}/tables/{{kernel}}/{{metric}}.stats.txt",
            csv=f"{SUMMARY}/tables/{{kernel}}/{{metric}}.csv",
            html=report(
                f"{SUMMARY}/tables/{{kernel}}/{{metric}}.html",
                caption="../report/table.rst",
                category="1. Tables",
                subcategory="per kernel",
                labels={"kernel": "{kernel}", "metric": "{metric}"},
            ),
            png=report(
                f"{SUMMARY}/plots/{{kernel}}/{{metric}}.png",
                caption="../report/plot.rst",
                category="3. Overhead plots",
                subcategory="per kernel",
                labels={"kernel": "{kernel}", "metric": "{metric}", "format": "png"},
            ),
            svg=f"{SUMMARY}/plots/{{kernel}}/{{metric}}.svg",
        log:
            f"{RESULTS}/logs/metric/{{kernel}}/{{metric}}.log",
        params:
            summary=lambda wildcards, output: Path(output.text).parents[2],
            configs=CAMPAIGN.configs,
            kernel=lambda wildcards: wildcards.kernel,
            per_kernel=True,
        wildcard_constraints:
            kernel="|".join(KERNELS),
            metric=r"[a-z_]+(\.[a-z_]+)?",
        conda:
            "../envs/damon-eval.yaml"
        script:
            "../scripts/metric.py"


rule summary:
    input:
        runs=rules.collect.output.runs,
    output:
        headlines=report(
            f"{SUMMARY}/headlines.html",
            caption="../report/headlines.rst",
            category="0. Headlines",
        ),
        headlines_json=f"{SUMMARY}/headlines.json",
        headlines_rst=f"{SUMMARY}/headlines.rst",
        compare=report(
            f"{SUMMARY}/compare-seed.html",
            caption="../report/compare.rst",
            category="2. Published vs reproduced",
        ),
        compare_text=f"{SUMMARY}/compare-seed.txt",
        compare_csv=f"{SUMMARY}/compare-seed.csv",
        failures=f"{SUMMARY}/failures.json",
        failures_text=f"{SUMMARY}/failures.txt",
        failures_rst=f"{SUMMARY}/failures.rst",
    log:
        f"{RESULTS}/logs/summary.log",
    params:
        configs=CAMPAIGN.configs,
        campaign=CAMPAIGN.name,
        kernel=BASE_KERNEL,
    conda:
        "../envs/damon-eval.yaml"
    script:
        "../scripts/summary.py"


rule record_reports:
    input:
        result=f"{RESULTS}/runs/{RUN_WILDCARDS}/result.json",
    output:
        heatmap=report(
            f"{SUMMARY}/records/{RUN_WILDCARDS}/heatmap.png",
            caption="../report/heatmap.rst",
            category="4. Access patterns",
            subcategory="{suite}/{workload}",
            labels={"config": "{config}", **KERNEL_LABEL, "figure": "heatmap"},
        ),
        wss_sz=report(
            f"{SUMMARY}/records/{RUN_WILDCARDS}/wss_sz.png",
            caption="../report/wss.rst",
            category="4. Access patterns",
            subcategory="{suite}/{workload}",
            labels={"config": "{config}", **KERNEL_LABEL, "figure": "wss distribution"},
        ),
        wss_time=report(
            f"{SUMMARY}/records/{RUN_WILDCARDS}/wss_time.png",
            caption="../report/wss.rst",
            category="4. Access patterns",
            subcategory="{suite}/{workload}",
            labels={"config": "{config}", **KERNEL_LABEL, "figure": "wss over time"},
        ),
        accuracy=report(
            f"{SUMMARY}/records/{RUN_WILDCARDS}/accuracy.csv",
            caption="../report/accuracy.rst",
            category="4. Access patterns",
            subcategory="{suite}/{workload}",
            labels={"config": "{config}", **KERNEL_LABEL, "figure": "accuracy"},
        ),
        summary=f"{SUMMARY}/records/{RUN_WILDCARDS}/record.json",
    log:
        f"{RESULTS}/logs/record/{RUN_WILDCARDS}.log",
    conda:
        "../envs/damon-eval.yaml"
    script:
        "../scripts/record.py"


# kernels: campaigns: every later kernel against the first, per configuration and metric.
if KERNELS:

    rule kernel_ab:
        input:
            runs=rules.collect.output.runs,
        output:
            html=report(
                f"{SUMMARY}/kernels.html",
                caption="../report/kernels.rst",
                category="0. Headlines",
                labels={"page": "kernel comparison"},
            ),
            text=f"{SUMMARY}/kernels.txt",
            csv=f"{SUMMARY}/kernels.csv",
            rst=f"{SUMMARY}/kernels.rst",
        log:
            f"{RESULTS}/logs/kernel_ab.log",
        params:
            base=BASE_KERNEL,
            others=list(KERNELS)[1:],
            configs=CAMPAIGN.configs,
        conda:
            "../envs/damon-eval.yaml"
        script:
            "../scripts/kernel_ab.py"


rule provenance:
    input:
        campaign=CAMPAIGN_JSON,
        results=campaign_run_results,
    output:
        page=report(
            f"{SUMMARY}/provenance.html",
            caption="../report/provenance.rst",
            category="5. Provenance",
        ),
    log:
        f"{RESULTS}/logs/provenance.log",
    conda:
        "../envs/damon-eval.yaml"
    script:
        "../scripts/provenance.py"


# Last: fails (Snakemake exits non-zero) when no run of the campaign succeeded, once
# every table, page and plot is written.
rule outcome:
    input:
        failures=rules.summary.output.failures,
        written=all_analysis_targets(),
    output:
        outcome=f"{SUMMARY}/outcome.txt",
    log:
        f"{RESULTS}/logs/outcome.log",
    conda:
        "../envs/damon-eval.yaml"
    script:
        "../scripts/outcome.py"
