"""``damon-eval scheme show``: schemes as seed text, damo JSON or raw sysfs values."""

from __future__ import annotations

import argparse
import json
import sys

from damon_eval.damon.model import MonitoringAttrs
from damon_eval.damon.scheme_damo import format_damo_json
from damon_eval.damon.scheme_text import format_scheme_text
from damon_eval.damon.schemes import resolve_schemes, schemes_from_argument
from damon_eval.errors import ConfigError

FORMATS = ("text", "json", "sysfs", "resolved")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="scheme_command", metavar="SUBCOMMAND", required=True)
    show = sub.add_parser(
        "show",
        help="show schemes in another form",
        description=(
            "Parse schemes (the seed's text form or damo's JSON; a file or inline text) and "
            "print them. Formats: text (the seed's one-line form), json (damo's scheme list), "
            "sysfs (raw values per file of each scheme's sysfs directory, for the given "
            "intervals), resolved (human and raw forms side by side)."
        ),
    )
    show.add_argument(
        "schemes",
        nargs="?",
        metavar="SCHEMES",
        help='a scheme file, or scheme text such as "4K null null 5 7s null pageout"',
    )
    show.add_argument(
        "--format",
        default="text",
        metavar="FORMAT",
        help=f"output form: {', '.join(FORMATS)} (default: text)",
    )
    show.add_argument(
        "--sample-us", default="5000", metavar="US", help="sampling interval (default 5000)"
    )
    show.add_argument(
        "--aggr-us", default="100000", metavar="US", help="aggregation interval (default 100000)"
    )


def _positive_int(text: str, option: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"{option} {text!r} is not an integer (microseconds)") from None
    if value <= 0:
        raise ConfigError(f"{option} {value} must be > 0 (microseconds)")
    return value


def run(args: argparse.Namespace) -> int:
    if args.format not in FORMATS:
        raise ConfigError(f"--format {args.format!r} is not valid; valid: {', '.join(FORMATS)}")
    if not args.schemes:
        raise ConfigError("no schemes given: pass a scheme file or scheme text")
    attrs = MonitoringAttrs(
        sample_us=_positive_int(args.sample_us, "--sample-us"),
        aggr_us=_positive_int(args.aggr_us, "--aggr-us"),
    )
    specs = schemes_from_argument(args.schemes)
    if args.format == "text":
        text = "\n".join(format_scheme_text(spec) for spec in specs)
    elif args.format == "json":
        text = json.dumps([format_damo_json(spec) for spec in specs], indent=2)
    elif args.format == "sysfs":
        text = json.dumps([r.to_sysfs_dict() for r in resolve_schemes(specs, attrs)], indent=2)
    else:
        text = json.dumps([r.to_dict() for r in resolve_schemes(specs, attrs)], indent=2)
    sys.stdout.write(text + "\n")
    return 0
