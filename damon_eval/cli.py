"""The ``damon-eval`` command line.

Each subcommand is one module in :mod:`damon_eval.commands` that defines

* ``NAME`` and ``HELP`` (one line),
* ``add_arguments(parser)`` to declare its options (it may add nested
  subcommands), and
* ``run(args) -> int`` to execute it.

Modules are discovered, so adding a command is adding a file.  A
:class:`~damon_eval.errors.DamonEvalError` becomes one line on stderr and exit
status 2; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import traceback
from collections.abc import Sequence

from damon_eval import __version__, commands
from damon_eval.errors import DamonEvalError

EXIT_USER_ERROR = 2


def _command_modules() -> list:
    modules = []
    for info in pkgutil.iter_modules(commands.__path__):
        if info.name.startswith("_"):
            continue
        modules.append(importlib.import_module(f"{commands.__name__}.{info.name}"))
    return sorted(modules, key=lambda m: m.NAME)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="damon-eval",
        description="Reproducible evaluation and benchmarking harness for Linux DAMON.",
    )
    parser.add_argument("--version", action="version", version=f"damon-eval {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show tracebacks instead of one-line errors"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in _command_modules():
        cmd = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(cmd)
        cmd.set_defaults(command_main=module.run)
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
