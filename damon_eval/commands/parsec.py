"""``damon-eval parsec build CAMPAIGN``: build a campaign's PARSEC packages once, on the host."""

from __future__ import annotations

import argparse
import json

from damon_eval.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    build = sub.add_parser(
        "build",
        help="build every parsec3/ and splash2x/ package of the campaign (cached by key)",
    )
    build.add_argument("campaign", help="campaign YAML or the pipeline's campaign.json")
    build.add_argument(
        "--summary", help="also write the build summary (per-package ok, seconds) to this JSON"
    )


def run(args: argparse.Namespace) -> int:
    from damon_eval.atomic import atomic_write_json
    from damon_eval.measure.plan import load_campaign_argument
    from damon_eval.workloads.base import WorkloadContext
    from damon_eval.workloads.parsec_build import build_parsec_on_host
    from damon_eval.workloads.parsec_host import resolve_build_mode

    campaign = load_campaign_argument(args.campaign)
    source = WorkloadContext.from_config(campaign.settings).parsec
    if source is None:
        raise ConfigError(f"campaign {campaign.name} provides no PARSEC (parsec.path is null)")
    mode = resolve_build_mode(source.build)
    if mode != "host":
        summary = {"mode": mode, "reason": "parsec.build is guest: packages build in the guest"}
        if source.build == "auto" and (campaign.settings.get("parsec") or {}).get("build_only"):
            print(
                "warning: this host cannot build PARSEC (parsec.build auto chose guest), so "
                "the parsec.build_only packages are not built; each run builds its own"
            )
    else:
        built = build_parsec_on_host(source)
        summary = {"mode": "host", **built.summary, "archive": str(built.archive)}
        failed = [name for name, p in built.summary["packages"].items() if not p["ok"]]
        print(
            f"PARSEC {built.key}: {len(built.summary['packages']) - len(failed)} of "
            f"{len(built.summary['packages'])} packages built"
            + (f"; failed: {', '.join(failed)}" if failed else "")
        )
    if args.summary:
        atomic_write_json(args.summary, summary)
    else:
        print(json.dumps(summary, indent=2, sort_keys=True))
    return 0
