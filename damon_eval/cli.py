"""The ``damon-eval`` command line.

Each subcommand is one module in :mod:`damon_eval.commands` that defines
``add_arguments(parser)`` to declare its options (it may add nested
subcommands) and ``run(args) -> int`` to execute it.  :data:`COMMANDS` names
each one with its one-line help; a command's module is imported only when that
command is parsed or its help is shown, so ``damon-eval --help`` and a light
command never pay for the heavy libraries (pandas, scipy, matplotlib...) that
others import.  Adding a command is adding a file and a row of
:data:`COMMANDS` (``tests/unit/test_cli.py`` checks they agree).

A :class:`~damon_eval.errors.DamonEvalError` becomes one line on stderr and exit
status 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass

from damon_eval import __version__
from damon_eval.errors import DamonEvalError

EXIT_USER_ERROR = 2


@dataclass(frozen=True)
class Command:
    name: str
    module: str  # under damon_eval.commands
    help: str


COMMANDS = (
    Command(
        "analyze",
        "analyze",
        "write every table (txt/csv/html), statistics, headlines, seed comparison and plots",
    ),
    Command(
        "campaign",
        "campaign",
        "validate a campaign (check), list its runs in execution order (plan), or show which "
        "are done, failed or missing (status)",
    ),
    Command("collect", "collect", "read every results/runs/**/result.json into one tidy runs.csv"),
    Command("damon", "damon", "show the kernel's DAMON features and kdamonds (read-only)"),
    Command("guest", "guest", "build the guest image; boot, inspect and stop QEMU guests"),
    Command(
        "import", "import_", "read another harness's results tree (damon-tests) into a runs.csv"
    ),
    Command(
        "parsec",
        "parsec",
        "build a campaign's PARSEC 3.0 packages once, in a chroot of its guest image (host build)",
    ),
    Command(
        "record",
        "record",
        "record data accesses with DAMON (like `damo record`), or export a record",
    ),
    Command("report", "report", "reports of a DAMON record: raw, heats, wss, accuracy"),
    Command(
        "run",
        "run",
        "execute one measured run of a workload under a configuration and write result.json",
    ),
    Command(
        "scheme",
        "scheme",
        "parse DAMOS schemes and show them as text, damo JSON or raw sysfs values",
    ),
    Command(
        "table",
        "table",
        "print one metric's table (workloads x configurations, overheads against orig)",
    ),
    Command(
        "workloads",
        "workloads",
        "list the workloads (synthetic, parsec3, splash2x, debian) and their availability",
    ),
)


class CommandParser(argparse.ArgumentParser):
    """A parser that imports its command's module the first time it parses or shows help.

    Nested parsers (``add_subparsers`` inside a command) are of this class too,
    with no module to load.
    """

    def __init__(self, *args, command_module: str | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._command_module = command_module

    def load(self) -> CommandParser:
        """Import the command's module and declare its arguments (once)."""
        if self._command_module is not None:
            module = importlib.import_module(f"damon_eval.commands.{self._command_module}")
            self._command_module = None
            module.add_arguments(self)
            self.set_defaults(command_main=module.run)
        return self

    def parse_known_args(self, args=None, namespace=None):
        self.load()
        return super().parse_known_args(args, namespace)

    def format_usage(self) -> str:
        self.load()
        return super().format_usage()

    def format_help(self) -> str:
        self.load()
        return super().format_help()


def build_parser(*, load_all: bool = False) -> argparse.ArgumentParser:
    """The whole command line; ``load_all`` imports every command now (for tests and docs)."""
    parser = CommandParser(
        prog="damon-eval",
        description="Reproducible evaluation and benchmarking harness for Linux DAMON.",
    )
    parser.add_argument("--version", action="version", version=f"damon-eval {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show tracebacks instead of one-line errors"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        cmd = sub.add_parser(
            command.name,
            help=command.help,
            description=command.help,
            command_module=command.module,
        )
        if load_all:
            cmd.load()
    return parser


def one_line(message: str) -> str:
    """Errors are printed on one line: fold any line breaks."""
    return " | ".join(part.strip() for part in str(message).splitlines() if part.strip())


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.command_main(args) or 0)
    except DamonEvalError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"damon-eval: error: {one_line(str(exc))}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("damon-eval: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
