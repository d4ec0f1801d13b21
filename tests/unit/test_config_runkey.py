"""RunKey.parse, the one parser of ``suite/workload/config/NN``, and the wildcard
constraints of the Snakemake rules, which are generated from the same patterns."""

from __future__ import annotations

import re

import pytest
from test_pipeline_dryrun import dry_run, snakemake_dry_run

from damon_eval.config.campaign import load_campaign
from damon_eval.config.runkey import RunKey, wildcard_constraints
from damon_eval.errors import ConfigError
from damon_eval.schema import load_schema


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("synthetic/zigzag/rec/01", RunKey("synthetic", "zigzag", "rec", 1)),
        ("synthetic/zigzag/rec/1", RunKey("synthetic", "zigzag", "rec", 1)),
        ("parsec3/blackscholes/prcl/99", RunKey("parsec3", "blackscholes", "prcl", 99)),
        ("debian/x264.fast-1/ethp_2/10", RunKey("debian", "x264.fast-1", "ethp_2", 10)),
    ],
)
def test_good_keys_parse(text, key):
    assert RunKey.parse(text) == key
    assert RunKey.parse(key.relative_dir) == key


def test_relative_dir_pads_the_repeat():
    key = RunKey.parse("synthetic/zigzag/rec/3")
    assert key.relative_dir == str(key) == "synthetic/zigzag/rec/03"
    assert key.workload_id == "synthetic/zigzag"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("synthetic/zigzag/rec", "4 parts"),
        ("base/synthetic/zigzag/rec/01/extra", "4 parts"),
        ("synthetic/zigzag/rec/01/extra", "repeat 'extra' is not a number"),
        ("", "4 parts"),
        ("synthetic/zigzag/rec/0", "not in 1..99"),
        ("synthetic/zigzag/rec/100", "not a number 1..99"),
        ("synthetic/zigzag/rec/x1", "not a number 1..99"),
        ("synthetic/zigzag/rec/-1", "not a number 1..99"),
        ("Synthetic/zigzag/rec/01", "suite 'Synthetic' is not valid"),
        ("synthetic//rec/01", "workload '' is not valid"),
        ("synthetic/zig zag/rec/01", "workload 'zig zag' is not valid"),
        ("synthetic/zigzag/Rec/01", "config 'Rec' is not valid"),
        ("synthetic/zigzag/1rec/01", "config '1rec' is not valid"),
    ],
)
def test_bad_keys_fail_with_one_clear_line(text, says):
    with pytest.raises(ConfigError) as caught:
        RunKey.parse(text)
    message = str(caught.value)
    assert says in message
    assert repr(text) in message  # names the bad value
    assert "synthetic/zigzag/rec/01" in message or "1..99" in message  # says what is valid
    assert "\n" not in message


def test_direct_construction_is_validated_too():
    with pytest.raises(ConfigError, match=r"repeat 0 is not in 1\.\.99"):
        RunKey("synthetic", "zigzag", "rec", 0)
    with pytest.raises(ConfigError, match="repeat '1' is not an integer"):
        RunKey("synthetic", "zigzag", "rec", "1")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="expected SUITE/NAME"):
        RunKey.of("zigzag", "rec", 1)
    assert RunKey.of("synthetic/zigzag", "rec", 2) == RunKey("synthetic", "zigzag", "rec", 2)


def _wildcard_path_regex() -> re.Pattern[str]:
    constraints = wildcard_constraints()
    fields = [f"(?P<{name}>{constraints[name]})" for name in ("suite", "workload", "config")]
    kernel = f"(?:(?P<kernel>{constraints['kernel']})/)?"  # kernels: campaigns
    return re.compile(kernel + "/".join([*fields, f"(?P<repeat>{constraints['repeat']})"]) + "$")


@pytest.mark.parametrize("campaign", ["default.yaml", "paper.yaml", "ci.yaml", "kernel-ab.yaml"])
def test_every_run_directory_matches_the_wildcards_and_parses_back(campaign):
    path_regex = _wildcard_path_regex()
    for key in load_campaign(campaign).runs():
        match = path_regex.fullmatch(key.relative_dir)
        assert match, key.relative_dir
        assert RunKey.parse(key.relative_dir) == key
        assert match["workload"] == key.workload
        assert (match["kernel"] or "") == key.kernel


@pytest.mark.parametrize(
    "text",
    [
        "a/b/c/01",
        "a/b/c/99",
        "a/b.c-d_e/f-g_h/10",
        "synthetic/zigzag/rec/1",
        "a/b/c/00",
        "a/b/c/100",
        "a/b/C/01",
        "a/b c/d/01",
        "A/b/c/01",
        "a/b/c/d/01",
        "B/b/c/d/01",
        "a/b/c/d/e/01",
        "/b/c/d/01",
    ],
)
def test_the_wildcards_match_exactly_the_run_directories_parse_accepts(text):
    try:
        canonical = RunKey.parse(text).relative_dir == text
    except ConfigError:
        canonical = False
    assert bool(_wildcard_path_regex().fullmatch(text)) == canonical


def test_the_schemas_use_the_same_patterns():
    constraints = wildcard_constraints()
    campaign = load_schema("campaign")["properties"]
    assert campaign["workloads"]["items"]["pattern"] == (
        f"^{constraints['suite']}/{constraints['workload']}$"
    )
    assert campaign["configs"]["items"]["pattern"] == f"^{constraints['config']}$"
    assert load_schema("configuration")["properties"]["name"]["pattern"] == (
        f"^{constraints['config']}$"
    )
    run = load_schema("result")["properties"]["run"]["properties"]
    for name in ("suite", "workload", "config"):
        assert run[name]["pattern"] == f"^{constraints[name]}$"
    assert (run["repeat"]["minimum"], run["repeat"]["maximum"]) == (1, 99)


def test_the_snakefile_applies_the_generated_constraints(repo_root):
    assert dry_run(repo_root, "results/runs/synthetic/zigzag/orig/01/result.json")["run"] == 1
    # An unpadded repeat is a valid key for `damon-eval run --run` but not a run directory:
    # without the repeat constraint Snakemake would plan a job for it.
    proc = snakemake_dry_run(
        repo_root, "--forceall", "results/runs/synthetic/zigzag/orig/1/result.json"
    )
    assert proc.returncode != 0
    assert "MissingRuleException" in proc.stdout + proc.stderr or "No rule to produce" in (
        proc.stdout + proc.stderr
    )
