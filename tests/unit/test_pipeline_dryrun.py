"""Dry runs of the pipeline: the plan of each shipped campaign and profile."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

SNAKEMAKE = shutil.which("snakemake", path=str(Path(sys.executable).parent)) or "snakemake"


def snakemake_dry_run(repo_root, *args) -> subprocess.CompletedProcess:
    """``snakemake -n`` (with ``args``) in the checkout, whatever the outcome."""
    return subprocess.run(
        [SNAKEMAKE, "-n", *args], cwd=repo_root, capture_output=True, text=True, timeout=300
    )


def dry_run(repo_root, *args):
    # --forceall: plan as from a fresh clone, whatever results/ this checkout already holds
    proc = snakemake_dry_run(repo_root, "--forceall", *args, "--quiet", "rules")
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
    proc = snakemake_dry_run(repo_root, "--config", "configs=[nosuch]")
    assert proc.returncode != 0
    assert "unknown configuration 'nosuch'" in proc.stdout + proc.stderr


def test_repeats_auto_plans_min_repeats_then_a_checkpoint(repo_root, tmp_path):
    # the default campaign's 18 cells, 2 repeats each first; collect waits for the rounds
    campaign = yaml.safe_load((repo_root / "configs" / "default.yaml").read_text())
    campaign.update(
        repeats="auto",
        auto_repeats={"min_repeats": 2, "max_repeats": 6, "target_ci": 0.02},
        results_dir=str(tmp_path / "results"),
    )
    (tmp_path / "auto.yaml").write_text(yaml.safe_dump(campaign))
    counts = dry_run(repo_root, "--configfile", str(tmp_path / "auto.yaml"))
    assert counts["run"] == 36
    assert counts["repeats_round"] == 1
    assert counts["repeats_summary"] == 1 and counts["collect"] == 1
    # `--config repeats=auto` alone takes the default rule: 3 repeats first
    counts = dry_run(repo_root, "--config", "repeats=auto", f"results_dir={tmp_path}/r")
    assert counts["run"] == 54 and counts["repeats_round"] == 1


def test_campaign_guest_kernel_reaches_the_image_rule(repo_root, tmp_path):
    build = tmp_path / "linux-build"
    (build / "arch/x86/boot").mkdir(parents=True)
    (build / "arch/x86/boot/bzImage").write_bytes(b"bzImage")
    (build / ".config").write_text("CONFIG_DAMON=y\n")
    campaign = tmp_path / "own-kernel.yaml"
    campaign.write_text(
        "campaign: own-kernel\nworkloads: [synthetic/zigzag]\nconfigs: [orig]\nrepeats: 1\n"
        f"results_dir: {tmp_path / 'results'}\nguest:\n  kernel: {{build: linux-build}}\n"
    )
    proc = subprocess.run(
        [SNAKEMAKE, str(tmp_path / "results/guest/image.json"), "-n", "--forceall", "-p",
         "--configfile", str(campaign)],
        cwd=repo_root, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"""--kernel '{{"build": "{build}"}}'""" in proc.stdout


def test_parsec_quick_campaign_plans_69_runs(repo_root):
    # 23 workloads x orig, rec, prcl x 1 repeat (availability is `campaign check`'s job)
    assert dry_run(repo_root, "--configfile", "configs/parsec-quick.yaml")["run"] == 69
