"""``damon-eval workloads list``: every workload, whether it can run, and why not."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml

from damon_eval.agent.build import GUEST_CONTROL_PATH
from damon_eval.errors import ConfigError
from damon_eval.workloads import (
    RunParams,
    WorkloadContext,
    all_workloads,
    get_workload,
    require_available,
)
from damon_eval.workloads.parsec import PARSEC_HOW_TO

NAME = "workloads"
HELP = "list the workloads (synthetic, parsec3, splash2x, debian) and their availability"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="workloads_command", metavar="ACTION", required=True)
    listing = sub.add_parser("list", help=HELP, description=HELP)
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.add_argument(
        "--config",
        type=Path,
        help="a campaign config (YAML) whose 'parsec' and 'guest_packages' keys are used",
    )
    listing.add_argument(
        "--parsec", type=Path, help="a PARSEC 3.0 tree or tarball (overrides the config's)"
    )
    listing.add_argument(
        "--suite", choices=("synthetic", "parsec3", "splash2x", "debian"), help="only this suite"
    )
    show = sub.add_parser(
        "show",
        help="what a workload does in the guest: uploads, prepare script, agent command",
        description="Print a workload's guest plan: uploads, prepare script, de-agent command.",
    )
    show.add_argument("workload", help="workload id, e.g. synthetic/zigzag")
    show.add_argument("--scale", type=float, default=1.0, help="workload scale (default 1)")
    show.add_argument("--config", type=Path, help="a campaign config (YAML)")
    show.add_argument("--parsec", type=Path, help="a PARSEC 3.0 tree or tarball")


def _context(args: argparse.Namespace) -> WorkloadContext:
    config: dict = {}
    if args.config:
        try:
            loaded = yaml.safe_load(args.config.read_text())
        except OSError as exc:
            raise ConfigError(f"cannot read config {args.config}: {exc.strerror}") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"config {args.config} is not valid YAML: {exc}") from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"config {args.config} must be a YAML mapping")
        config = dict(loaded or {})
    if args.parsec:
        parsec = config.get("parsec")
        parsec = dict(parsec) if isinstance(parsec, dict) else {}
        parsec["path"] = str(args.parsec)
        config["parsec"] = parsec
    return WorkloadContext.from_config(config)


def run(args: argparse.Namespace) -> int:
    if args.workloads_command == "show":
        return _show(args)
    return _list(args)


def _show(args: argparse.Namespace) -> int:
    context = _context(args)
    workload = get_workload(args.workload)
    require_available(workload, context)
    params = RunParams(out_dir="/var/tmp/damon-eval/runs/RUN", scale=args.scale)
    plan = workload.prepare(context, params)
    run_plan = workload.run_plan(context, params)
    print(f"# {workload.id}: {workload.description}")
    print(f"# version: {workload.version(context)}")
    print(f"# DAMON target: {run_plan.target} (hold {run_plan.hold})")
    if run_plan.expected_runtime_s:
        print(f"# expected runtime under KVM: ~{run_plan.expected_runtime_s:.0f} s")
    for upload in plan.uploads:
        print(f"# upload {upload.source} -> {upload.dest}{' (extract)' if upload.extract else ''}")
    print("# prepare script:")
    print(plan.script(), end="")
    print("# run:")
    print(workload.agent_invocation(context, params, control=GUEST_CONTROL_PATH).shell())
    return 0


def _list(args: argparse.Namespace) -> int:
    context = _context(args)
    rows = []
    for workload in all_workloads():
        if args.suite and workload.suite != args.suite:
            continue
        ok, reason = workload.available(context)
        plan = workload.run_plan(context, RunParams(out_dir="OUT")) if ok else None
        rows.append(
            {
                "id": workload.id,
                "available": ok,
                "reason": reason,
                "description": workload.description,
                "target": plan.target if plan else None,
                "hold": plan.hold if plan else None,
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max(len(r["id"]) for r in rows)
    for row in rows:
        mark = "yes" if row["available"] else "no "
        detail = row["description"] if row["available"] else row["reason"]
        print(f"{row['id']:<{width}}  {mark}  {detail}")
    if any(not r["available"] and r["id"].startswith(("parsec3/", "splash2x/")) for r in rows):
        print(f"\nTo provide PARSEC, {PARSEC_HOW_TO}.")
    return 0
