"""sysfs_layout.py owns every DAMON sysfs file name: the other sysfs modules spell none."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from damon_eval.damon import sysfs_layout
from damon_eval.damon.model import (
    AccessPattern,
    Context,
    Filter,
    Region,
    Scheme,
    Target,
)
from damon_eval.damon.sysfs_layout import (
    SYSFS_NAMES,
    SysfsPaths,
    context_sysfs_files,
    scheme_sysfs_files,
)

DAMON_DIR = Path(sysfs_layout.__file__).parent
USERS = sorted(p for p in DAMON_DIR.glob("sysfs*.py") if p.name != "sysfs_layout.py")
# A name next to a slash: the pieces of a path (``{kd}/state``, ``filters/``).
SLASHED = re.compile(r"(\w+)/|/(\w+)")


def _docstrings(tree: ast.Module) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def sysfs_name_literals(source: str) -> list[tuple[int, str, str]]:
    """``(line, literal, name)`` of every string constant that is a sysfs name or
    has one next to a slash (docstrings aside)."""
    tree = ast.parse(source)
    skip = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
            continue
        if id(node) in skip:
            continue
        text = node.value
        names = {text} if text in SYSFS_NAMES else set()
        names |= {a or b for a, b in SLASHED.findall(text)} & SYSFS_NAMES
        found += [(node.lineno, text, name) for name in sorted(names)]
    return sorted(found)


def test_the_scan_finds_hand_built_paths():
    source = (
        '"""A docstring naming nr_kdamonds/state is fine."""\n'
        'a = f"{kd}/state"\n'
        'b = "tried_regions"\n'
        'c = f"{ctx}/schemes/{s}/quotas"\n'
        'd = f"echo off > {kd}/state)"\n'
        'e = "reading nr_kdamonds"\n'
        'f = ("on", "off", "commit")\n'
    )
    names = [(line, name) for line, _, name in sysfs_name_literals(source)]
    assert names == [
        (2, "state"),
        (3, "tried_regions"),
        (4, "quotas"),
        (4, "schemes"),
        (5, "state"),
    ]


@pytest.mark.parametrize("path", USERS, ids=lambda p: p.name)
def test_no_sysfs_file_name_outside_the_layout(path):
    assert USERS, "no sysfs*.py module found"
    found = sysfs_name_literals(path.read_text())
    assert not found, (
        f"{path.name} spells out sysfs names; take them from sysfs_layout.py: "
        + "; ".join(f"line {line}: {text!r} ({name})" for line, text, name in found)
    )


def _segments(path: str) -> set[str]:
    return {part for part in path.split("/") if part and not part.isdigit()}


def test_every_name_the_layout_builds_is_in_sysfs_names():
    paths = SysfsPaths("/admin")
    built = [
        paths.nr_kdamonds,
        paths.state(1),
        paths.pid(1),
        paths.nr_contexts(1),
        paths.operations(1),
        paths.avail_operations(1),
        paths.intervals_dir(1),
        paths.nr_targets(1),
        paths.nr_regions(1, 2),
        paths.nr_schemes(1),
        paths.quotas_dir(1, 2),
        paths.stats_file(1, 2, "nr_tried"),
        paths.nr_filters(1, 2, "core_filters"),
        paths.filter_dir(1, 2, 3, "ops_filters"),
        paths.tried_bytes(1, 2),
    ]
    context = Context(
        operations="vaddr",
        targets=(Target(pid=42, regions=(Region(0, 4096),)),),
        schemes=(),
    )
    scheme = Scheme(
        action="stat",
        access_pattern=AccessPattern(),
        filters=(
            Filter(type="memcg", matching=True, memcg_path="/a"),
            Filter(type="addr", matching=False, addr_start=0, addr_end=4096),
            Filter(type="target", matching=True, target_idx=0),
        ),
    )
    built += list(context_sysfs_files(context)) + list(scheme_sysfs_files(scheme))
    names = set().union(*(_segments(p) for p in built)) - {"admin"}
    assert names <= SYSFS_NAMES, sorted(names - SYSFS_NAMES)


def test_paths_are_the_kernels():
    paths = SysfsPaths("/a")
    assert paths.state(0) == "/a/kdamonds/0/state"
    assert paths.nr_contexts(0) == "/a/kdamonds/0/contexts/nr_contexts"
    assert paths.nr_regions(0, 1) == "/a/kdamonds/0/contexts/0/targets/1/regions/nr_regions"
    assert paths.nr_schemes(0) == "/a/kdamonds/0/contexts/0/schemes/nr_schemes"
    assert paths.intervals_dir(0) == "/a/kdamonds/0/contexts/0/monitoring_attrs/intervals"
    assert paths.tried_bytes(0, 1) == "/a/kdamonds/0/contexts/0/schemes/1/tried_regions/total_bytes"
    assert paths.nr_filters(0, 1) == "/a/kdamonds/0/contexts/0/schemes/1/filters/nr_filters"
    assert paths.filter_dir(0, 1, 0, "core_filters") == (
        "/a/kdamonds/0/contexts/0/schemes/1/core_filters/0"
    )
