# Shared helpers: load and validate the campaign, plan the runs.  All logic
# lives in the damon_eval package; this file only adapts it to Snakemake.
import json
import os
import sys
from pathlib import Path

from damon_eval.atomic import atomic_write_json
from damon_eval.config.campaign import campaign_from_dict, load_campaign_mapping
from damon_eval.config.runkey import RunKey, wildcard_constraints as run_key_wildcards
from damon_eval.guest.kernels import kernel_option
from damon_eval.paths import resolve_config_path

envvars:
    "PATH",


# Shell rules call `damon-eval`: the one installed next to this Snakemake
# (a conda environment, when used, puts its own first on PATH).
os.environ["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])

DEFAULT_CAMPAIGN = "configs/default.yaml"
# Without --configfile the default campaign runs; --config KEY=VALUE overrides
# keys of whichever campaign file is used.
if workflow.configfiles:
    CAMPAIGN_SOURCE = str(workflow.configfiles[-1])
    CAMPAIGN_MAPPING = dict(config)
else:
    CAMPAIGN_SOURCE = DEFAULT_CAMPAIGN
    CAMPAIGN_MAPPING = {**load_campaign_mapping(DEFAULT_CAMPAIGN), **config}
# Validated before anything runs: a bad campaign stops here with one line.
CAMPAIGN = campaign_from_dict(CAMPAIGN_MAPPING, CAMPAIGN_SOURCE)
RESULTS = CAMPAIGN.settings["results_dir"]
GUEST_SPEC = str(resolve_config_path(CAMPAIGN.settings["guest"]["spec"]))
# The campaign's own guest kernel, if any, as `--kernel '<json>'` (absolute paths).
GUEST_KERNEL_OPTION = kernel_option(
    CAMPAIGN.settings["guest"].get("kernel"), Path(CAMPAIGN_SOURCE).parent
)
# kernels: (A/B): each kernel its own image, and runs below runs/<kernel>/.
KERNELS = CAMPAIGN.kernels
GUEST_KERNEL_OPTIONS = {
    name: kernel_option(value, Path(CAMPAIGN_SOURCE).parent) for name, value in KERNELS.items()
}
# A run's path below runs/ (and its run key's text form), as wildcards.
RUN_WILDCARDS = (
    "{kernel}/{suite}/{workload}/{config}/{repeat}"
    if KERNELS
    else "{suite}/{workload}/{config}/{repeat}"
)
IMAGE_MANIFEST = (
    f"{RESULTS}/guest/{{kernel}}/image.json" if KERNELS else f"{RESULTS}/guest/image.json"
)
# The images every run waits for.  kernels: all of them, so every kernel is built and
# checked (DAMON, its interfaces) before the first run: no run is measured next to a
# kernel compile, and a patched kernel without DAMON stops the campaign before any run.
RUN_IMAGE_MANIFESTS = (
    [IMAGE_MANIFEST.format(kernel=name) for name in KERNELS] if KERNELS else [IMAGE_MANIFEST]
)
BASE_KERNEL = CAMPAIGN.base_kernel or ""
KERNEL_LABEL = {"kernel": "{kernel}"} if KERNELS else {}
RUNS = CAMPAIGN.runs()
CAMPAIGN_JSON = f"{RESULTS}/campaign.json"


def write_resolved_campaign():
    """The resolved campaign (file plus --config overrides) that every run reads."""
    path = Path(CAMPAIGN_JSON)
    content = {"source": str(CAMPAIGN_SOURCE), "settings": CAMPAIGN.settings}
    if not path.exists() or json.loads(path.read_text()) != content:
        atomic_write_json(path, content)


write_resolved_campaign()


# kernel, suite, workload, config and repeat: generated from the run key's own patterns.
wildcard_constraints:
    **run_key_wildcards(),


def run_result(key):
    return f"{RESULTS}/runs/{key.relative_dir}/result.json"


def all_run_results():
    """The planned runs (with repeats: auto, round 1; repeats.smk adds the later rounds)."""
    return [run_result(key) for key in RUNS]


def run_priority(wildcards):
    run = RUN_WILDCARDS.format(**dict(wildcards.items()))
    return CAMPAIGN.priority(RunKey.parse(run))


def guest_kernel_option(wildcards):
    """`--kernel <json>` of the image to build (kernels: the wildcard's kernel)."""
    return GUEST_KERNEL_OPTIONS[wildcards.kernel] if KERNELS else GUEST_KERNEL_OPTION


def attempt_number(wildcards, attempt):
    return attempt


SUMMARY = f"{RESULTS}/summary"


def failure_box_rst():
    """The summary's failure box (rST), once written: the report's front page opens with it."""
    path = Path(f"{SUMMARY}/failures.rst")
    return path.read_text() if path.is_file() else ""


def kernel_headline_rst():
    """The kernel comparison's headline sentences (rST), once written (kernels: campaigns)."""
    path = Path(f"{SUMMARY}/kernels.rst")
    return path.read_text() if KERNELS and path.is_file() else ""


# workflow/report/workflow.rst can read only the config; the campaign was read from it above.
config["_report_failure_box"] = failure_box_rst()
config["_report_kernel_headline"] = kernel_headline_rst()


def report_metrics():
    from damon_eval.pipeline import REPORT_METRICS

    return list(REPORT_METRICS)


def record_runs():
    """Runs whose configuration records DAMON: their first repeat gets record reports."""
    recording = {name for name in CAMPAIGN.configs if CAMPAIGN.configuration(name).records}
    return [key for key in RUNS if key.config in recording and key.repeat == 1]


def record_report_dir(key):
    return f"{SUMMARY}/records/{key.relative_dir}"


def all_analysis_targets():
    targets = [f"{SUMMARY}/runs.csv", f"{SUMMARY}/headlines.html", f"{SUMMARY}/provenance.html"]
    for metric in report_metrics():
        targets += [f"{SUMMARY}/tables/{metric}.html", f"{SUMMARY}/plots/{metric}.png"]
    for key in record_runs():
        targets.append(f"{record_report_dir(key)}/heatmap.png")
    if CAMPAIGN.auto_repeats is not None:
        targets.append(f"{SUMMARY}/repeats.html")
    if KERNELS:
        targets.append(f"{SUMMARY}/kernels.html")
        for kernel in KERNELS:
            for metric in report_metrics():
                targets += [
                    f"{SUMMARY}/tables/{kernel}/{metric}.html",
                    f"{SUMMARY}/plots/{kernel}/{metric}.png",
                ]
    return targets


# repeats: auto (repeats.smk): the runs of every round so far.
AUTO_REPEATS = CAMPAIGN.auto_repeats


def round_decisions(number):
    """Round ``number``'s decisions; raises Snakemake's 'incomplete checkpoint' until it ran."""
    path = checkpoints.repeats_round.get(round=number).output.decisions
    return json.loads(Path(path).read_text())


def runs_through_round(number):
    """Run keys of rounds 1 .. ``number``: the runs round ``number``'s checkpoint decides from.
    Round 1 is the planned runs; round k + 1 the runs round k's decisions name."""
    keys = list(RUNS)
    for earlier in range(1, number):
        keys += [RunKey.parse(run_id) for run_id in round_decisions(earlier)["next_runs"]]
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
