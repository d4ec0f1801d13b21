"""``damon-eval damon ...`` and ``damon-eval scheme show``: output, help, one-line errors."""

from __future__ import annotations

import contextlib
import json

import pytest
from fakekernel import FakeKernel

from damon_eval.cli import main


@pytest.mark.parametrize(
    "argv",
    [
        ["damon", "-h"],
        ["damon", "features", "-h"],
        ["damon", "status", "-h"],
        ["scheme", "-h"],
        ["scheme", "show", "-h"],
    ],
)
def test_help_works(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 0
    assert "usage:" in capsys.readouterr().out


def assert_one_line_error(capsys, fragment: str) -> None:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("damon-eval: error: "), err
    assert fragment in err, err


def test_features_on_a_fake_tree(tmp_path, capsys):
    kernel = FakeKernel(tmp_path)
    kernel.seed_running_kdamond(pid=77)
    before = kernel.snapshot("/")
    assert main(["damon", "features", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "interface       sysfs (/sys/kernel/mm/damon/admin)" in out
    assert "operations      vaddr fvaddr paddr" in out
    assert "damon:damon_aggregated" in out
    assert main(["damon", "features", "--root", str(tmp_path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["interface"] == "sysfs" and data["tracefs"] == "/sys/kernel/tracing"
    assert "stat" in data["scheme_actions"]
    assert kernel.snapshot("/") == before and kernel.writes == []  # read-only


def test_features_probe_looks_inside_a_scratch_kdamond(tmp_path, capsys, monkeypatch):
    from damon_eval import machine_select
    from damon_eval.machines.local import LocalMachine

    kernel = FakeKernel(tmp_path)

    @contextlib.contextmanager
    def fake_kernel_machine(selector, preparation=None):
        assert selector.kind == "tree" and selector.root == tmp_path and preparation is None
        yield LocalMachine(kernel.root, fs=kernel.fs)

    # The fake kernel's file system acts on writes (creates kdamond directories).
    monkeypatch.setattr(machine_select, "open_machine", fake_kernel_machine)
    assert main(["damon", "features", "--root", str(tmp_path)]) == 0
    assert "operations      unknown" in capsys.readouterr().out
    assert main(["damon", "features", "--root", str(tmp_path), "--probe", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["operations"] == ["vaddr", "fvaddr", "paddr"] and data["notes"] == []
    assert kernel.nr_kdamonds() == 0


def test_unknown_guest_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DAMON_EVAL_CACHE", str(tmp_path / "cache"))
    assert main(["damon", "status", "--guest", "nosuch"]) == 2
    assert_one_line_error(capsys, "no guest named 'nosuch'")


def test_guest_and_root_exclude_each_other(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["damon", "status", "--guest", "g", "--root", str(tmp_path)])
    assert info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_features_of_a_debugfs_kernel(tmp_path, capsys):
    FakeKernel(tmp_path, sysfs=None, debugfs="seed", tracefs=False)
    assert main(["damon", "features", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "debugfs" in out and "tracefs         not mounted" in out
    assert "note: in-kernel recording" in out


def test_status_on_a_fake_tree(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DAMON_EVAL_CACHE", str(tmp_path / "cache"))
    kernel = FakeKernel(tmp_path / "machine")
    kernel.seed_running_kdamond(pid=77)
    assert main(["damon", "status", "--root", str(tmp_path / "machine")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "kdamond",
        "state",
        "pid",
        "operations",
        "targets",
        "schemes",
        "ours",
    ]
    assert lines[1].split() == ["0", "on", "77", "paddr", "0", "1", "no"]
    assert main(["damon", "status", "--root", str(tmp_path / "machine"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["ours"] is False
    assert kernel.writes == []


def test_status_without_kdamonds(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DAMON_EVAL_CACHE", str(tmp_path / "cache"))
    FakeKernel(tmp_path / "m")
    assert main(["damon", "status", "--root", str(tmp_path / "m")]) == 0
    assert capsys.readouterr().out == "no kdamonds\n"


def test_missing_damon_is_one_line(tmp_path, capsys):
    FakeKernel(tmp_path, sysfs=None)
    assert main(["damon", "features", "--root", str(tmp_path)]) == 2
    assert_one_line_error(capsys, "DAMON not found")


def test_bad_root_is_one_line(tmp_path, capsys):
    assert main(["damon", "status", "--root", str(tmp_path / "nope")]) == 2
    assert_one_line_error(capsys, "is not a directory")


def test_scheme_show_sysfs(capsys):
    argv = ["scheme", "show", "--sample-us", "5000", "--aggr-us", "100000", "--format", "sysfs"]
    assert main([*argv, "4K null null 5 7s null pageout"]) == 0
    (files,) = json.loads(capsys.readouterr().out)
    assert files["action"] == "pageout"
    assert files["access_pattern/sz/min"] == 4096
    assert files["access_pattern/sz/max"] == 18446744073709551615
    assert files["access_pattern/nr_accesses/min"] == 0
    assert files["access_pattern/nr_accesses/max"] == 1
    assert files["access_pattern/age/min"] == 70
    assert files["access_pattern/age/max"] == 4294967295
    assert files["quotas/ms"] == 0 and files["watermarks/metric"] == "none"


def test_scheme_show_text_json_resolved_from_files(repo_root, capsys):
    ethp = str(repo_root / "configs/schemes/ethp.damos")
    assert main(["scheme", "show", ethp]) == 0
    assert capsys.readouterr().out == (
        "min max 5 max min max hugepage\n2M max min max 13s max nohugepage\n"
    )
    assert main(["scheme", "show", "--format", "json", ethp]) == 0
    damo = json.loads(capsys.readouterr().out)
    assert damo[1]["access_pattern"]["age"] == {"min": "13 s", "max": "max"}
    assert main(["scheme", "show", "--format", "resolved", "--aggr-us", "200000", ethp]) == 0
    resolved = json.loads(capsys.readouterr().out)
    assert resolved[1]["raw"]["access_pattern"]["age_min"] == 65
    assert resolved[1]["source"].endswith("ethp.damos:5")


def test_scheme_show_reads_json_files(tmp_path, capsys):
    path = tmp_path / "prcl.json"
    path.write_text(
        json.dumps(
            [
                {
                    "action": "pageout",
                    "access_pattern": {
                        "sz_bytes": {"min": "4 KiB", "max": "max"},
                        "nr_accesses": {"min": "0 %", "max": "5 %"},
                        "age": {"min": "7 s", "max": "max"},
                    },
                }
            ]
        )
    )
    assert main(["scheme", "show", str(path)]) == 0
    assert capsys.readouterr().out == "4K max min 5 7s max pageout\n"


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["scheme", "show", "4K null null 5 7s null pagout"], "<argument>:1: unknown action"),
        (["scheme", "show", "4K null null 500 7s null pageout"], "over 100 %"),
        (["scheme", "show", "--format", "yaml", "4K max min 5 7s max stat"], "valid: text, json"),
        (["scheme", "show", "--sample-us", "x", "4K max min 5 7s max stat"], "not an integer"),
        (["scheme", "show", "--sample-us", "200000", "min max min max min max stat"], "<= aggr_us"),
        (["scheme", "show"], "no schemes given"),
        (
            [
                "scheme",
                "show",
                "--format",
                "text",
                '[{"action": "stat", "quotas": {"time_ms": 5}}]',
            ],
            "cannot express",
        ),
    ],
)
def test_scheme_show_errors_are_one_line(argv, fragment, capsys):
    assert main(argv) == 2
    assert_one_line_error(capsys, fragment)
