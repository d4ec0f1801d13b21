"""Dry runs of the pipeline: the plan of each shipped campaign and profile."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SNAKEMAKE = shutil.which("snakemake", path=str(Path(sys.executable).parent)) or "snakemake"


def dry_run(repo_root, *args):
    proc = subprocess.run(
        # --forceall: plan as from a fresh clone, whatever results/ this checkout already holds
        [SNAKEMAKE, "-n", "--forceall", *args, "--quiet", "rules"],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", proc.stdout, re.MULTILINE))
    return {k: int(v) for k, v in counts.items()}


def test_default_campaign_plans_54_runs(repo_root):
    assert dry_run(repo_root)["run"] == 54


def test_paper_campaign_plans_750_runs(repo_root):
    assert dry_run(repo_root, "--configfile", "configs/paper.yaml")["run"] == 750


def test_one_configuration_can_be_selected(repo_root):
    assert dry_run(repo_root, "--config", "configs=[orig,prcl]")["run"] == 18
    assert dry_run(repo_root, "runs_prcl")["run"] == 9


def test_slurm_profile_dry_run(repo_root):
    pytest.importorskip(
        "snakemake_executor_plugin_slurm", reason="the cluster extra is not installed"
    )
    counts = dry_run(repo_root, "--profile", "profiles/slurm", "--configfile", "configs/ci.yaml")
    assert counts["run"] == 6


def test_bad_campaign_stops_before_anything_runs(repo_root):
    proc = subprocess.run(
        [SNAKEMAKE, "-n", "--config", "configs=[nosuch]"],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0
    assert "unknown configuration 'nosuch'" in proc.stdout + proc.stderr


def test_parsec_quick_campaign_plans_69_runs(repo_root):
    # 23 workloads x orig, rec, prcl x 1 repeat (availability is `campaign check`'s job)
    assert dry_run(repo_root, "--configfile", "configs/parsec-quick.yaml")["run"] == 69
