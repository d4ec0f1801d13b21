"""``damon-eval record export``: convert a DAMON record between formats.

``perf_script`` and ``json``/``json_compressed`` are what damo reads;
``parquet`` is the harness's compact columnar cache; ``damon_data`` is the
seed-era binary format; ``tracefs`` is the kernel's trace text.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

NAME = "record"
HELP = "DAMON record files: export to another format"

_FORMATS = ["perf_script", "tracefs", "json", "json_compressed", "damon_data", "parquet"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="record_command", metavar="COMMAND", required=True)
    export = sub.add_parser("export", help="write a record in another format")
    export.add_argument("-i", "--input", type=Path, required=True, metavar="IN")
    export.add_argument("-o", "--output", type=Path, required=True, metavar="OUT")
    export.add_argument("--format", choices=_FORMATS, required=True, help="output format")
    export.add_argument("--input-format", choices=_FORMATS, help="skip input format detection")
    export.add_argument(
        "--event", choices=["damon_aggregated", "damos_before_apply"], help="event to read"
    )
    export.add_argument(
        "--allow-partial",
        action="store_true",
        help="export the complete snapshots of a truncated record (warns)",
    )


def run(args: argparse.Namespace) -> int:
    from damon_eval.records.store import load_record
    from damon_eval.records.writers import export_record

    record = load_record(
        args.input,
        format=args.input_format,
        allow_partial=args.allow_partial,
        event=args.event,
    )
    for warning in record.info.warnings:
        print(f"damon-eval: warning: {warning}", file=sys.stderr)
    export_record(record, args.output, args.format)
    return 0
