"""``damon-eval campaign check|plan|status FILE``: validate a campaign, show its runs, and
which of them are done, failed (with the failure kind and reason) or missing."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from damon_eval.errors import ConfigError
from damon_eval.workloads import PARSEC_HOW_TO


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    check = sub.add_parser(
        "check", help="validate everything and check every workload is available here"
    )
    check.add_argument("campaign", help="campaign YAML or the pipeline's campaign.json")
    check.add_argument("--json", action="store_true", help="print the resolved campaign as JSON")
    plan = sub.add_parser("plan", help="list the runs in execution order")
    plan.add_argument("campaign", help="campaign YAML or the pipeline's campaign.json")
    status = sub.add_parser(
        "status",
        help="list failed and missing runs (failure kind and reason) and count the done ones",
    )
    status.add_argument("campaign", help="campaign YAML or the pipeline's campaign.json")
    status.add_argument("--results", help="results directory (default: the campaign's results_dir)")
    status.add_argument("--all", action="store_true", help="list the done runs too")
    status.add_argument("--json", action="store_true", help="print every run's state as JSON")


def run(args: argparse.Namespace) -> int:
    from damon_eval.measure.plan import load_campaign_argument

    campaign = load_campaign_argument(args.campaign)
    if args.action == "status":
        return _status(campaign, args)
    if args.action == "plan":
        for number, key in enumerate(campaign.runs(), start=1):
            print(f"{number:4d} {key.relative_dir}")
        auto = campaign.auto_repeats
        if auto:
            print(
                f"then rounds of one more repeat per cell whose {auto.metric} 95% CI "
                f"half-width is above {auto.target_rel_half_width:.1%} of its mean, "
                f"up to {auto.max_repeats} repeats (repeats: auto)"
            )
        return 0
    reasons = campaign.unavailable()
    if reasons:
        by_reason: dict[str, list[str]] = {}
        for workload_id, reason in reasons:
            by_reason.setdefault(reason, []).append(workload_id)
        parts = [f"{', '.join(ids)}: {reason}" for reason, ids in by_reason.items()]
        how_to = ""
        if any(w.startswith(("parsec3/", "splash2x/")) for w, _ in reasons):
            how_to = f". To provide PARSEC, {PARSEC_HOW_TO}"
        raise ConfigError(
            f"campaign {campaign.name}: {len(reasons)} workload(s) cannot run here: "
            + "; ".join(parts)
            + how_to
        )
    if args.json:
        print(json.dumps(campaign.settings, indent=2, sort_keys=True))
    else:
        runs = campaign.runs()
        auto = campaign.auto_repeats
        repeats = (
            f"{auto.min_repeats} to {auto.max_repeats} repeats (auto) = {len(runs)} runs "
            "in the first round"
            if auto
            else f"{campaign.repeats} repeats = {len(runs)} runs"
        )
        print(
            f"campaign {campaign.name}: {len(campaign.workloads)} workloads x "
            f"{len(campaign.configs)} configurations x {repeats}, "
            f"order {campaign.settings['order']}; all workloads available"
        )
    return 0


def _status(campaign, args: argparse.Namespace) -> int:
    from damon_eval.campaign_status import campaign_status

    results = Path(args.results) if args.results else Path(campaign.settings["results_dir"])
    status = campaign_status(campaign, results)
    if args.json:
        print(json.dumps(status.to_dict(), indent=2))
        return 0
    print(status.headline())
    for run in status.runs:
        if run.state != "done" or args.all:
            print(run.line())
    return 0
