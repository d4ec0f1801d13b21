"""Loading the record a command's ``-i/--input`` options name (``report``, ``record export``)."""

from __future__ import annotations

import argparse
import sys


def load_input_record(args: argparse.Namespace):
    """The :class:`~damon_eval.records.store.Record` of ``args``; its warnings go to stderr."""
    from damon_eval.records.store import load_record

    record = load_record(
        args.input,
        format=args.input_format,
        allow_partial=args.allow_partial,
        event=args.event,
    )
    for warning in record.info.warnings:
        print(f"damon-eval: warning: {warning}", file=sys.stderr)
    return record
