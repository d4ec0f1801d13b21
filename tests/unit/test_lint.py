"""Style gates: ruff and ``snakemake --lint`` must report nothing."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest


def _tool(name: str) -> str:
    local = shutil.which(name, path=str(__import__("pathlib").Path(sys.executable).parent))
    return local or name


def test_ruff_reports_nothing(repo_root):
    proc = subprocess.run(
        [_tool("ruff"), "check", "."], cwd=repo_root, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("variant", ["fixed", "auto", "kernels"])
def test_snakemake_lint_reports_nothing(repo_root, tmp_path, variant):
    # repeats: auto adds the checkpoint rules of workflow/rules/repeats.smk, and a
    # kernels: campaign the per-kernel rules (metric_of_kernel, kernel_ab)
    campaign = "configs/kernel-ab.yaml" if variant == "kernels" else "configs/ci.yaml"
    auto = ["--config", "repeats=auto", f"results_dir={tmp_path}"] if variant == "auto" else []
    proc = subprocess.run(
        [_tool("snakemake"), "--lint", "--configfile", campaign, *auto],
        cwd=repo_root,
        capture_output=True,
        text=True,
    )
    # snakemake --lint exits 1 when it has findings.
    assert proc.returncode == 0, proc.stdout + proc.stderr
