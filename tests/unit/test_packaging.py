"""The two dependency lists agree, and the console script is declared."""

from __future__ import annotations

import re
import tomllib

import yaml


def _pins(requirements: list[str]) -> dict[str, str]:
    pins = {}
    for req in requirements:
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)\s*==\s*([^\s;]+)", req.strip())
        assert match, f"dependency {req!r} is not pinned exactly (name==version)"
        pins[match.group(1).lower().replace("_", "-")] = match.group(2)
    return pins


def test_environment_yml_and_pyproject_agree(repo_root):
    project = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((repo_root / "environment.yml").read_text())
    conda_reqs = [d for d in env["dependencies"] if isinstance(d, str)]
    conda_pins = _pins([d for d in conda_reqs if not d.startswith(("python", "pip"))])
    assert conda_pins == _pins(project["dependencies"])
    assert "conda-forge" in env["channels"]


def test_console_script_declared(repo_root):
    project = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["damon-eval"] == "damon_eval.cli:main"
