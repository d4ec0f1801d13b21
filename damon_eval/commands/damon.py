"""``damon-eval damon features|status``: what the kernel's DAMON offers, and its kdamonds.

Both are read-only: they list and read files, never write (``features --probe``
excepted: it may create and remove an idle scratch kdamond directory).
"""

from __future__ import annotations

import argparse
import json
import sys

from damon_eval.commands._target import add_target_arguments, machine_selector
from damon_eval.damon.backend import Features, KdamondStatus
from damon_eval.damon.controller import DamonController


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="damon_command", metavar="SUBCOMMAND", required=True)
    features = sub.add_parser(
        "features",
        help="interface, operations sets, tracepoints, scheme actions, state commands",
        description="Print what the target kernel's DAMON supports. Read-only.",
    )
    status = sub.add_parser(
        "status",
        help="kdamonds with their state, pid, operations, and whether damon-eval started them",
        description="List the kdamonds of the target kernel. Read-only.",
    )
    for each in (features, status):
        add_target_arguments(each)
        each.add_argument("--json", action="store_true", help="print JSON instead of a table")
    features.add_argument(
        "--probe",
        action="store_true",
        help="when no kdamond exists, create an idle scratch kdamond directory, look inside "
        "and remove it, so operations, actions and state commands are known (writes DAMON's "
        "sysfs files: for guests and test machines, never a host whose DAMON others use)",
    )


def _words(values: tuple[str, ...] | None) -> str:
    if values is None:
        return "unknown"
    return " ".join(values) if values else "none"


def format_features(features: Features) -> str:
    rows = [
        ("interface", f"{features.interface} ({features.root})"),
        ("kernel", features.kernel_release or "unknown"),
        ("operations", _words(features.operations)),
        ("scheme actions", _words(features.scheme_actions)),
        ("state commands", _words(features.state_commands)),
        ("tracefs", features.tracefs or "not mounted"),
        ("tracepoints", _words(tuple(f"damon:{t}" for t in features.tracepoints))),
        ("capabilities", _words(features.capabilities)),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"{name:<{width}}  {value}" for name, value in rows]
    lines += [f"note: {note}" for note in features.notes]
    return "\n".join(lines)


def format_status(statuses: list[KdamondStatus]) -> str:
    if not statuses:
        return "no kdamonds"
    header = ("kdamond", "state", "pid", "operations", "targets", "schemes", "ours")
    rows = [header] + [
        (
            str(s.index),
            s.state,
            str(s.pid) if s.pid is not None else "-",
            s.operations or "-",
            str(s.nr_targets) if s.nr_targets is not None else "-",
            str(s.nr_schemes) if s.nr_schemes is not None else "-",
            "yes" if s.ours else "no",
        )
        for s in statuses
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def run(args: argparse.Namespace) -> int:
    from damon_eval.machine_select import open_machine

    with open_machine(machine_selector(args)) as machine:
        controller = DamonController(machine.fs)
        if args.damon_command == "features":
            features = controller.features(probe=args.probe)
            text = (
                json.dumps(features.to_dict(), indent=2) if args.json else format_features(features)
            )
        else:
            statuses = controller.status()
            if args.json:
                text = json.dumps([s.to_dict() for s in statuses], indent=2)
            else:
                text = format_status(statuses)
    sys.stdout.write(text + "\n")
    return 0
