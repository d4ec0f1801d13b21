"""Kernel A/B campaigns: kernels: in the run matrix, run keys and runs.csv, the
kernel comparison page, and a Debian kernel package from another suite."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from results_factory import CampaignSpec, RunSpec, make_result

from damon_eval.config.campaign import campaign_from_dict, load_campaign
from damon_eval.config.runkey import RunKey, wildcard_constraints
from damon_eval.errors import ConfigError
from damon_eval.guest import rootfs
from damon_eval.guest.kernels import (
    KernelChoice,
    kernel_option,
    parse_kernel_option,
    resolve_kernel,
)
from damon_eval.guest.spec import image_key, load_spec, parse_spec

SNAKEMAKE = shutil.which("snakemake", path=str(Path(sys.executable).parent)) or "snakemake"
BACKPORTS = {"package": "linux-image-amd64", "suite": "trixie-backports"}
AB = {
    "campaign": "ab",
    "workloads": ["synthetic/zigzag", "synthetic/hotcold"],
    "configs": ["orig", "rec"],
    "repeats": 2,
    "kernels": {"base": "linux-image-amd64", "patched": BACKPORTS},
}


# ----------------------------------------------------------------- run matrix


def test_kernels_interleave_with_configurations_in_every_repeat():
    campaign = campaign_from_dict(AB, "<test>")
    runs = [str(k) for k in campaign.runs()]
    assert len(runs) == 2 * 2 * 2 * 2
    assert runs[:4] == [
        "base/synthetic/zigzag/orig/01",
        "patched/synthetic/zigzag/orig/01",
        "base/synthetic/zigzag/rec/01",
        "patched/synthetic/zigzag/rec/01",
    ]
    # repeat 1 of every cell on both kernels before any repeat 2
    assert all(r.endswith("/01") for r in runs[:8]) and all(r.endswith("/02") for r in runs[8:])
    assert campaign.base_kernel == "base" and campaign.kernel_value("patched") == BACKPORTS
    priorities = [campaign.priority(k) for k in campaign.runs()]
    assert priorities == sorted(priorities, reverse=True)


def test_campaigns_without_kernels_keep_their_runs_and_paths():
    data = {k: v for k, v in AB.items() if k != "kernels"}
    campaign = campaign_from_dict(data, "<test>")
    assert campaign.kernel_names == [""] and campaign.base_kernel is None
    assert [str(k) for k in campaign.runs()][:2] == [
        "synthetic/zigzag/orig/01",
        "synthetic/zigzag/rec/01",
    ]
    assert campaign.kernel_value("") is None
    with pytest.raises(ConfigError, match=r"kernel 'base' is not in campaign ab"):
        campaign.kernel_value("base")
    with pytest.raises(ConfigError, match=r"has kernels \(base, patched\): a run key needs one"):
        campaign_from_dict(AB, "<test>").kernel_value("")


def test_shipped_kernel_ab_campaign_validates():
    campaign = load_campaign("kernel-ab.yaml")
    assert list(campaign.kernels) == ["base", "patched"]
    assert resolve_kernel(campaign.kernels["patched"]).suite == "trixie-backports"
    assert len(campaign.runs()) == 2 * 2 * 2 * 3


# ------------------------------------------------------------------ run keys


def test_run_key_round_trips_with_a_kernel():
    key = RunKey.parse("patched/synthetic/zigzag/rec/3")
    assert (key.kernel, key.suite, key.workload, key.config, key.repeat) == (
        "patched", "synthetic", "zigzag", "rec", 3,
    )  # fmt: skip
    assert key.relative_dir == "patched/synthetic/zigzag/rec/03"
    assert RunKey.parse(key.relative_dir) == key
    assert RunKey.of("synthetic/zigzag", "rec", 3, "patched") == key
    plain = RunKey.parse("synthetic/zigzag/rec/03")
    assert plain.kernel == "" and plain.relative_dir == "synthetic/zigzag/rec/03"
    assert plain != key


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Patched/synthetic/zigzag/rec/01", r"kernel 'Patched' is not valid"),
        ("/synthetic/zigzag/rec/01", r"empty kernel name"),
        ("a/b/synthetic/zigzag/rec/01", r"with 4 parts"),
        ("9x/synthetic/zigzag/rec/01", r"kernel '9x' is not valid"),
    ],
)
def test_bad_run_keys_with_a_kernel_name_the_value(text, message):
    with pytest.raises(ConfigError, match=message) as info:
        RunKey.parse(text)
    assert "\n" not in str(info.value)


def test_wildcard_constraints_carry_the_kernel_pattern():
    constraints = wildcard_constraints()
    pattern = re.compile(rf"^(?:{constraints['kernel']})$")
    assert pattern.match("base") and pattern.match("patched_2")
    assert not pattern.match("Base") and not pattern.match("a/b") and not pattern.match("")
    # every campaign kernel name the schema accepts is a valid wildcard value
    for name in campaign_from_dict(AB, "<test>").kernels:
        assert pattern.match(name)


# --------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kernels": {"Base": "linux-image-amd64", "p": "linux-image-amd64"}}, r"Base"),
        ({"kernels": {"base-1": "linux-image-amd64", "p": "linux-image-amd64"}}, r"base-1"),
        ({"kernels": {"base": "linux-image-amd64"}}, r"kernels"),
        ({"kernels": {"base": "linux-image-amd64", "p": "No Package"}}, r"kernels.p: .*No Pack"),
        (
            {"kernels": {"base": "linux-image-amd64", "p": {"deb": "missing.deb"}}},
            r"kernels.p: kernel deb 'missing.deb' does not exist",
        ),
        (
            {"kernels": {"base": "linux-image-amd64", "p": {"package": "xy", "suite": "Bad S"}}},
            r"kernels.p: kernel suite 'Bad S' is not a Debian suite name",
        ),
        (
            {"guest": {"kernel": "linux-image-amd64"}},
            r"guest.kernel 'linux-image-amd64' is not supported with kernels:; name that kernel",
        ),
        (
            {"repeats": "auto"},
            r"repeats: 'auto' is not supported with kernels:; give a whole number of repeats",
        ),
        (
            {"workloads": ["synthetic/zigzag", "parsec3/canneal"]},
            r"workloads: 'parsec3/canneal' is not supported with kernels: .*"
            r"valid there: synthetic/\* and debian/\* workloads",
        ),
        (
            {"workloads": ["splash2x/fft"]},
            r"workloads: 'splash2x/fft' is not supported with kernels:",
        ),
    ],
)
def test_bad_kernels_give_one_line_errors_naming_the_value(change, message):
    with pytest.raises(ConfigError, match=message) as info:
        campaign_from_dict({**AB, **change}, "<test>")
    assert "\n" not in str(info.value)


def test_unsupported_kernel_campaigns_are_refused_through_overrides_too():
    # Snakemake's --config repeats=auto reaches the same check
    with pytest.raises(ConfigError, match=r"repeats: 'auto' is not supported with kernels:"):
        campaign_from_dict(AB, "<test>", {"repeats": "auto"})
    # the same campaigns without kernels: stay valid
    plain = {k: v for k, v in AB.items() if k != "kernels"}
    assert campaign_from_dict(plain, "<test>", {"repeats": "auto"}).auto_repeats is not None
    assert campaign_from_dict({**plain, "workloads": ["parsec3/canneal"]}, "<test>").workloads


def _unsupported_campaign(tmp_path: Path, change: dict) -> Path:
    data = {**AB, **change, "results_dir": str(tmp_path / "results")}
    path = tmp_path / "ab.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


UNSUPPORTED = [
    ({"repeats": "auto"}, "repeats: 'auto' is not supported with kernels:"),
    ({"workloads": ["parsec3/canneal"]}, "workloads: 'parsec3/canneal' is not supported"),
]


@pytest.mark.parametrize(("change", "message"), UNSUPPORTED)
def test_cli_refuses_unsupported_kernel_campaigns_in_one_line(tmp_path, change, message):
    path = _unsupported_campaign(tmp_path, change)
    proc = subprocess.run(
        [sys.executable, "-m", "damon_eval.cli", "campaign", "plan", str(path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and str(path) in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(("change", "message"), UNSUPPORTED)
def test_snakemake_refuses_unsupported_kernel_campaigns_at_validation(
    repo_root, tmp_path, change, message
):
    path = _unsupported_campaign(tmp_path, change)
    proc = subprocess.run(
        [SNAKEMAKE, "-n", "--forceall", "--configfile", str(path)],
        cwd=repo_root, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode != 0
    assert message in proc.stdout + proc.stderr
    assert not (tmp_path / "results").exists()  # stopped before campaign.json was written


def test_kernel_paths_are_resolved_from_the_campaigns_directory(tmp_path):
    (tmp_path / "k.deb").write_bytes(b"not really a deb")
    data = {**AB, "kernels": {"base": "linux-image-amd64", "mine": "k.deb"}}
    campaign = campaign_from_dict(data, tmp_path / "campaign.yaml")
    assert campaign.kernel_names == ["base", "mine"]
    with pytest.raises(ConfigError, match=r"kernels.mine: kernel 'k.deb' does not exist"):
        campaign_from_dict(data, tmp_path / "elsewhere" / "campaign.yaml")


def test_a_run_boots_the_kernel_its_key_names(monkeypatch, tmp_path):
    from damon_eval.measure import plan, result

    campaign = campaign_from_dict(AB, "<test>")
    assert plan.campaign_guest(campaign, "patched").guest.kernel == BACKPORTS
    assert plan.campaign_guest(campaign, "base").guest.kernel == "linux-image-amd64"
    request = plan.RunRequest(campaign, RunKey.parse("other/synthetic/zigzag/rec/01"), tmp_path)
    with pytest.raises(ConfigError, match=r"kernel 'other' is not in campaign ab"):
        plan.plan_run(request)
    skeleton = result.result_skeleton(
        plan.plan_run(
            plan.RunRequest(campaign, RunKey.parse("patched/synthetic/zigzag/rec/01"), tmp_path)
        )
    )
    assert skeleton["run"]["kernel"] == "patched"


# ------------------------------------------------------- runs.csv and report


def _write_ab_results(results_dir: Path, patched_factor: float) -> list[Path]:
    """Results of AB's matrix; the patched kernel's runtime is scaled by ``patched_factor``."""
    spec = CampaignSpec(workloads=AB["workloads"], configs=("orig", "rec"), repeats=3)
    paths = []
    for key in campaign_from_dict({**AB, "repeats": 3}, "<test>").runs():
        result = make_result(RunSpec(key.suite, key.workload, key.config, key.repeat), spec)
        result["run"]["kernel"] = key.kernel
        if key.kernel == "patched":
            result["metrics"]["runtime"] *= patched_factor
        path = results_dir / "runs" / key.relative_dir / "result.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(result))
        paths.append(path)
    return paths


def test_runs_csv_has_a_kernel_column_and_checks_the_path(tmp_path):
    from damon_eval.analysis.errors import ResultFileError
    from damon_eval.analysis.runtable import collect_runs, load_result

    paths = _write_ab_results(tmp_path, 1.0)
    frame = collect_runs(tmp_path)
    assert "kernel" in frame.columns
    assert sorted(set(frame["kernel"])) == ["base", "patched"]
    assert len(frame[frame["metric"] == "runtime"]) == 24
    moved = tmp_path / "runs" / "synthetic" / "x" / "orig" / "01" / "result.json"
    moved.parent.mkdir(parents=True)
    moved.write_text(paths[0].read_text())
    with pytest.raises(ResultFileError, match=r"belongs in runs/base/synthetic/"):
        load_result(moved, tmp_path)


def _kernel_page(tmp_path: Path, patched_factor: float) -> dict[str, str]:
    from damon_eval.pipeline import collect_step, kernel_ab_step

    paths = _write_ab_results(tmp_path, patched_factor)
    summary = tmp_path / "summary"
    collect_step(paths, summary / "runs.csv")
    kernel_ab_step(summary / "runs.csv", summary, "base", ["patched"], ["orig", "rec"])
    return {s: (summary / f"kernels.{s}").read_text() for s in ("txt", "html", "csv", "rst")}


def test_report_table_and_sentence_name_what_changed(tmp_path):
    page = _kernel_page(tmp_path, 1.5)
    text = page["txt"]
    assert text.startswith("patched against base: ")
    assert re.search(r"runtime of orig on synthetic/hotcold \+50\.00 %", text)
    assert "# configuration orig" in text and "# configuration rec" in text
    header = next(line for line in text.splitlines() if line.startswith("runtime"))
    assert header.split() == ["runtime", "base", "patched", "(overhead)"]
    total = next(line for line in text.splitlines() if line.startswith("total"))
    assert total.split()[-1] == "(*50.00*)"  # significant: starred
    assert "Welch" in page["rst"] and "differ significantly" in page["rst"]
    assert "<table" in page["html"] and "patched against base" in page["html"]
    assert page["csv"].splitlines()[0].startswith("base,patched,config,kernel,metric,")


def test_report_says_so_when_nothing_changed(tmp_path):
    page = _kernel_page(tmp_path, 1.0)
    sentence = page["txt"].splitlines()[0]
    assert re.fullmatch(
        r"patched against base: none of \d+ comparisons differs significantly "
        r"\(Welch's t-test, p < 0\.05\)\.",
        sentence,
    )


def test_configuration_tables_of_a_kernel_campaign_are_per_kernel(tmp_path):
    from damon_eval.analysis.errors import RunTableError
    from damon_eval.pipeline import collect_step, metric_step

    paths = _write_ab_results(tmp_path, 2.0)
    summary = tmp_path / "summary"
    collect_step(paths, summary / "runs.csv")
    for kernel in ("base", "patched"):
        metric_step(summary / "runs.csv", "runtime", summary, ["orig", "rec"], kernel, True)
    metric_step(summary / "runs.csv", "runtime", summary, ["orig", "rec"], "base")
    tables = summary / "tables"
    main = (tables / "runtime.txt").read_text()
    base, patched = ((tables / k / "runtime.txt").read_text() for k in ("base", "patched"))
    assert main == base  # the base kernel's are the main ones

    def orig_cell(text: str, workload: str) -> float:
        row = next(line for line in text.splitlines() if line.startswith(workload))
        return float(row.split()[1])

    # the patched kernel's runtimes were doubled: its own table, never an average of both
    for workload in AB["workloads"]:
        assert orig_cell(patched, workload) == pytest.approx(2 * orig_cell(base, workload), 1e-3)
    for suffix in (".stats.txt", ".csv", ".html"):
        assert (tables / "patched" / f"runtime{suffix}").is_file()
    assert "kernel patched" in (tables / "patched" / "runtime.html").read_text()
    assert (summary / "plots" / "patched" / "runtime.png").stat().st_size > 1000
    assert not (summary / "plots" / "runtime" / "patched.png").exists()
    # without a kernel the two kernels' runs would share cells: refused, in one line
    with pytest.raises(RunTableError, match=r"runs of kernels base, patched: .*--kernel base"):
        metric_step(summary / "runs.csv", "runtime", summary, ["orig", "rec"], None)
    with pytest.raises(RunTableError, match=r"kernel 'other' is not in the run table; .*patched"):
        metric_step(summary / "runs.csv", "runtime", summary, ["orig", "rec"], "other", True)


def test_summary_of_a_kernel_campaign_needs_its_base_kernel(tmp_path):
    from damon_eval.analysis.errors import RunTableError
    from damon_eval.pipeline import collect_step, summary_step

    paths = _write_ab_results(tmp_path, 2.0)
    summary = tmp_path / "summary"
    collect_step(paths, summary / "runs.csv")
    summary_step(summary / "runs.csv", summary, ["orig", "rec"], "ab", "base")
    assert "runtime" in (summary / "headlines.json").read_text()
    with pytest.raises(RunTableError, match=r"runs of kernels base, patched"):
        summary_step(summary / "runs.csv", summary, ["orig", "rec"], "ab", None)


def test_table_and_analyze_commands_take_a_kernel(tmp_path, capsys):
    from damon_eval.cli import main
    from damon_eval.pipeline import collect_step

    paths = _write_ab_results(tmp_path, 2.0)
    runs_csv = tmp_path / "summary" / "runs.csv"
    collect_step(paths, runs_csv)
    assert main(["table", "--metric", "runtime", str(runs_csv)]) == 2
    assert "runs of kernels base, patched" in capsys.readouterr().err
    tables = {}
    for kernel in ("base", "patched"):
        assert main(["table", "--metric", "runtime", "--kernel", kernel, str(runs_csv)]) == 0
        tables[kernel] = capsys.readouterr().out
    assert tables["base"] != tables["patched"]
    out = tmp_path / "analysis"
    args = ["analyze", str(runs_csv), "--kernel", "patched", "--no-plots", "--out", str(out)]
    assert main(args) == 0
    assert (out / "tables" / "runtime.txt").read_text() == tables["patched"]
    assert main(["table", "--metric", "runtime", "--kernel", "nosuch", str(runs_csv)]) == 2
    assert "kernel 'nosuch' is not in the run table" in capsys.readouterr().err


def test_a_kernel_campaign_plans_tables_per_kernel(repo_root, tmp_path):
    from damon_eval.pipeline import REPORT_METRICS

    def planned(*args):
        proc = subprocess.run(
            [SNAKEMAKE, "-n", "--forceall", "--quiet", "rules", *args],
            cwd=repo_root, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return {k: int(v) for k, v in re.findall(r"^(\w+)\s+(\d+)$", proc.stdout, re.M)}

    results = f"results_dir={tmp_path / 'r'}"
    counts = planned("--configfile", "configs/kernel-ab.yaml", "--config", results)
    assert counts["metric_of_kernel"] == 2 * len(REPORT_METRICS)
    assert counts["metric"] == len(REPORT_METRICS) and counts["run"] == 24
    assert "metric_of_kernel" not in planned("--config", results)


def _planned_run_inputs(repo_root: Path, *args: str) -> dict[str, list[str]]:
    """run job -> its input files, from a dry-run of the whole campaign."""
    proc = subprocess.run(
        [SNAKEMAKE, "-n", "--forceall", *args],
        cwd=repo_root, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    jobs = re.findall(r"^rule run:\n\s+input: (.*)\n\s+output: (\S+)", proc.stdout, re.M)
    return {output: inputs.split(", ") for inputs, output in jobs}


def test_every_run_of_a_kernel_campaign_waits_for_all_kernel_images(repo_root, tmp_path):
    results = tmp_path / "r"
    campaign = tmp_path / "ab.yaml"
    campaign.write_text(yaml.safe_dump({**AB, "results_dir": str(results)}))
    runs = _planned_run_inputs(repo_root, "--configfile", str(campaign))
    assert len(runs) == len(campaign_from_dict(AB, "<test>").runs())
    manifests = {str(results / "guest" / kernel / "image.json") for kernel in AB["kernels"]}
    for output, inputs in runs.items():
        # base runs too: nothing is measured while the patched kernel still builds
        assert manifests <= set(inputs), f"{output} waits only for {inputs}"


def test_a_run_without_kernels_waits_for_its_one_image(repo_root, tmp_path):
    results = tmp_path / "r"
    runs = _planned_run_inputs(repo_root, "--config", f"results_dir={results}")
    assert runs
    for inputs in runs.values():
        assert [i for i in inputs if i.endswith("image.json")] == [
            str(results / "guest" / "image.json")
        ]


def test_a_base_run_target_builds_the_patched_image_first(repo_root, tmp_path):
    results = tmp_path / "r"
    campaign = tmp_path / "ab.yaml"
    campaign.write_text(yaml.safe_dump({**AB, "results_dir": str(results)}))
    target = results / "runs" / "base" / "synthetic" / "zigzag" / "orig" / "01" / "result.json"
    proc = subprocess.run(
        [SNAKEMAKE, "-n", str(target), "--configfile", str(campaign)],
        cwd=repo_root, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert re.search(r"^guest_image\s+2$", proc.stdout, re.M), proc.stdout[-2000:]
    assert "wildcards: kernel=patched\n" in proc.stdout


def test_snakemake_writes_each_kernels_tables_from_its_own_runs(repo_root, tmp_path):
    results = tmp_path / "results"
    written = _write_ab_results(results, 2.0)
    old = min(p.stat().st_mtime for p in written) - 100
    for kernel in AB["kernels"]:  # images older than the results: no run is rescheduled
        manifest = results / "guest" / kernel / "image.json"
        manifest.parent.mkdir(parents=True)
        manifest.write_text("{}\n")
        os.utime(manifest, (old, old))
    campaign = tmp_path / "ab.yaml"
    campaign.write_text(yaml.safe_dump({**AB, "repeats": 3, "results_dir": str(results)}))
    tables = results / "summary" / "tables"
    targets = [tables / "runtime.txt", tables / "base" / "runtime.txt"]
    targets.append(tables / "patched" / "runtime.txt")
    proc = subprocess.run(
        [SNAKEMAKE, *map(str, targets), "--cores", "2", "--configfile", str(campaign)],
        cwd=repo_root, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "rule run:" not in proc.stdout + proc.stderr
    main, base, patched = (t.read_text() for t in targets)
    assert main == base and patched != base
    assert (results / "summary" / "plots" / "patched" / "runtime.png").is_file()


# ------------------------------------------------ a kernel from another suite


def test_backports_kernel_form_resolves_and_round_trips():
    choice = resolve_kernel(BACKPORTS)
    assert choice == KernelChoice("package", name="linux-image-amd64", suite="trixie-backports")
    assert choice.describe() == "Debian package linux-image-amd64 from trixie-backports"
    assert choice.identity() == {**{"form": "package", "name": "linux-image-amd64"},
                                 "suite": "trixie-backports"}  # fmt: skip
    option = kernel_option(BACKPORTS)
    assert resolve_kernel(parse_kernel_option(shlex.split(option)[1])) == choice
    plain = kernel_option("linux-image-amd64")
    assert resolve_kernel(parse_kernel_option(shlex.split(plain)[1])).suite is None
    with pytest.raises(ConfigError, match=r"suite applies to package only"):
        resolve_kernel({"deb": "x.deb", "suite": "trixie-backports"})


def test_backports_kernel_is_in_the_image_key_packages_and_sources(tmp_path):
    default = load_spec()
    backports = default.with_kernel(BACKPORTS)
    assert backports.kernel is None and backports.kernel_suite == "trixie-backports"
    assert image_key(backports) != image_key(default)
    assert image_key(default.with_kernel("linux-image-amd64")) == image_key(default)
    other = default.with_kernel({**BACKPORTS, "suite": "sid"})
    assert len({image_key(backports), image_key(other)}) == 2
    assert backports.all_packages()[0] == "linux-image-amd64/trixie-backports"
    argv = rootfs.mmdebstrap_argv(backports, tmp_path / "root")
    assert argv[-4:-1] == [default.suite, str(tmp_path / "root"), default.mirror]
    sources = [a for a in argv if a.startswith("deb ")]
    assert sources == [f"deb {default.mirror} trixie-backports main"]
    assert not [a for a in rootfs.mmdebstrap_argv(default, tmp_path) if a.startswith("deb ")]
    # the same through an image spec file's kernel: and its kernel_suite key
    minimal = {"suite": "trixie"}
    from_spec = parse_spec({**minimal, "kernel": BACKPORTS})
    by_key = parse_spec({**minimal, "kernel_suite": "trixie-backports"})
    assert image_key(from_spec) == image_key(by_key)
    assert from_spec.as_dict()["kernel_suite"] == "trixie-backports"
    with pytest.raises(ConfigError, match=r"kernel's suite or kernel_suite, not both"):
        parse_spec({**minimal, "kernel": BACKPORTS, "kernel_suite": "sid"})


def test_backports_kernel_provenance_names_its_suite():
    from damon_eval.guest.build import kernel_provenance

    spec = load_spec().with_kernel(BACKPORTS)
    info = kernel_provenance(spec, "7.3.4+deb13-amd64", "CONFIG_DAMON=y\n", None)
    assert info["suite"] == "trixie-backports" and info["name"] == "linux-image-amd64"
    assert kernel_provenance(load_spec(), "6.12", "", None)["suite"] == "trixie"
