"""The command line as a whole: the command table, -h everywhere, one-line errors."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import subprocess
import sys

import pytest

from damon_eval import cli, commands


def _subcommand_paths(parser: argparse.ArgumentParser, prefix=()):
    """Every (nested) subcommand path, e.g. ('guest', 'build')."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*prefix, name)
                yield from _subcommand_paths(sub, (*prefix, name))


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    listed = " ".join(out.split())  # argparse wraps long help lines
    for command in cli.COMMANDS:
        assert f" {command.name} {command.help.split()[0]} " in listed


def test_every_command_module_is_in_the_table():
    modules = {info.name for info in pkgutil.iter_modules(commands.__path__)}
    public = {name for name in modules if not name.startswith("_")}
    assert public == {command.module for command in cli.COMMANDS}
    for command in cli.COMMANDS:
        module = importlib.import_module(f"damon_eval.commands.{command.module}")
        assert callable(module.add_arguments) and callable(module.run), command.module


def test_command_names_are_unique_and_sorted():
    names = [command.name for command in cli.COMMANDS]
    assert names == sorted(set(names))


def test_the_chosen_command_gets_its_arguments_and_entry_point():
    args = cli.build_parser().parse_args(["report", "wss", "-i", "rec.data", "--sortby", "time"])
    assert args.sortby == "time" and str(args.input) == "rec.data"
    assert args.command_main is importlib.import_module("damon_eval.commands.report").run


@pytest.mark.parametrize(
    "path", sorted(_subcommand_paths(cli.build_parser(load_all=True))), ids=" ".join
)
def test_every_subcommand_has_help(path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([*path, "-h"])
    assert exit_info.value.code == 0
    assert "usage: damon-eval " + " ".join(path) in capsys.readouterr().out


def test_user_errors_are_one_line_with_status_2():
    proc = subprocess.run(
        [sys.executable, "-m", "damon_eval", "scheme", "show", "4K max 0 5 7s max swapout"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("damon-eval: error: ")
    assert "swapout" in lines[0] and "pageout" in lines[0]  # names the bad token and valid ones
    assert "Traceback" not in proc.stderr


def test_debug_shows_the_traceback():
    proc = subprocess.run(
        [sys.executable, "-m", "damon_eval", "--debug", "scheme", "show", "4K max 0 5 7s max x"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "Traceback" in proc.stderr


def test_multi_line_messages_are_folded_into_one():
    assert cli.one_line("a\n  b\n\nc") == "a | b | c"
