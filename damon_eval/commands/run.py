"""``damon-eval run``: one measured run (boot, configure, execute, sample, result.json)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from damon_eval.config.campaign import campaign_from_dict
from damon_eval.config.runkey import RunKey
from damon_eval.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = (
        "examples:\n"
        "  damon-eval run --workload synthetic/hotcold --config prcl --repeat 1 "
        "--out results/runs/synthetic/hotcold/prcl/01\n"
        "  damon-eval run --campaign configs/default.yaml --run debian/x264/rec/02 --out DIR\n"
        "  damon-eval run --ssh root@testbox --workload synthetic/zigzag --config prcl --out DIR\n"
    )
    what = parser.add_argument_group("what to run")
    what.add_argument("--campaign", help="campaign YAML (or the pipeline's campaign.json)")
    what.add_argument(
        "--run", dest="run_id", metavar="SUITE/WORKLOAD/CONFIG/NN", help="a run of the campaign"
    )
    what.add_argument(
        "--workload", help="workload id, e.g. synthetic/zigzag (see `workloads list`)"
    )
    what.add_argument("--config", help="configuration name (configs/configurations/<name>.yaml)")
    what.add_argument("--repeat", type=int, default=1, help="repeat number (default 1)")
    parser.add_argument(
        "--out", required=True, help="run directory, or the path of its result.json"
    )
    guest = parser.add_argument_group("guest (without --campaign)")
    guest.add_argument("--vcpus", type=int, default=2)
    guest.add_argument("--memory-mib", type=int, default=2048)
    guest.add_argument("--accel", choices=("auto", "kvm", "tcg"), default="auto")
    guest.add_argument(
        "--no-fast-start", action="store_true", help="cold boot instead of restoring"
    )
    guest.add_argument("--scale", type=float, default=1.0, help="workload scale (default 1.0)")
    guest.add_argument("--timeout-s", type=int, default=3600, help="workload time limit")
    from damon_eval.commands._target import add_ssh_arguments

    add_ssh_arguments(parser)
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=10.0,
        metavar="S",
        help="with --ssh: longest pause between the short SSH sessions that check whether the "
        "workload finished (default 10)",
    )
    attempts = parser.add_argument_group("retries (the pipeline sets these)")
    attempts.add_argument("--attempt", type=int, default=1)
    attempts.add_argument("--max-attempts", type=int, default=1)
    attempts.add_argument(
        "--failed-ok",
        action="store_true",
        help="exit 0 after recording a failed run on its last attempt",
    )


def _request(args: argparse.Namespace):
    from damon_eval.measure.plan import RunRequest, load_campaign_argument

    out = Path(args.out)
    result_path = out if out.suffix == ".json" else out / "result.json"
    if args.run_id:
        if not args.campaign:
            raise ConfigError("--run needs --campaign")
        try:
            key = RunKey.parse(args.run_id)
        except ConfigError as exc:
            raise ConfigError(f"--run: {exc}") from None
        campaign = load_campaign_argument(args.campaign)
    else:
        if not (args.workload and args.config):
            raise ConfigError("give --workload and --config (or --campaign and --run)")
        try:
            key = RunKey.of(args.workload, args.config, args.repeat)
        except ConfigError as exc:
            raise ConfigError(f"--workload/--config/--repeat: {exc}") from None
        if args.campaign:
            campaign = load_campaign_argument(args.campaign)
        else:
            campaign = campaign_from_dict(
                {
                    "campaign": "adhoc",
                    "workloads": [args.workload],
                    "configs": [args.config],
                    "repeats": max(args.repeat, 1),
                    "workload_scale": args.scale,
                    "run_timeout_s": args.timeout_s,
                    "max_attempts": args.max_attempts,
                    "guest": {
                        "vcpus": args.vcpus,
                        "memory_mib": args.memory_mib,
                        "accel": args.accel,
                        "fast_start": not args.no_fast_start,
                    },
                },
                "<command line>",
            )
    return RunRequest(
        campaign=campaign,
        key=key,
        result_path=result_path,
        attempt=args.attempt,
        max_attempts=args.max_attempts,
    )


def run(args: argparse.Namespace) -> int:
    from damon_eval.commands._target import remote_options
    from damon_eval.machine_select import MachineSelector
    from damon_eval.measure.run import execute_run

    if not args.poll_interval > 0:
        raise ConfigError(f"--poll-interval {args.poll_interval} must be > 0 seconds")
    options = remote_options(args, poll_interval_s=args.poll_interval)
    request = _request(args)
    # --ssh: the same run on a machine that already has DAMON (docs/remote.md);
    # otherwise a fresh guest as the campaign says
    outcome = execute_run(request, MachineSelector.ssh(options) if options else None)
    if outcome.status == "ok":
        print(f"{request.key.relative_dir}: ok -> {outcome.result_path}")
        return 0
    final = outcome.result_path is not None
    print(
        f"damon-eval: run {request.key.relative_dir} attempt {request.attempt}/"
        f"{request.max_attempts} failed: {outcome.failure}"
        + (f" (recorded in {outcome.result_path})" if final else " (will be retried)"),
        file=sys.stderr,
    )
    return 0 if final and args.failed_ok else 1
