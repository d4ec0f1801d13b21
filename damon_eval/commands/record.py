"""``damon-eval record``: record a workload's data accesses with DAMON (the seed's ``damo record``).

``damon-eval record [options] <command>|<pid>`` records into ``-o FILE``
(default ``damon.data``, which ``damon-eval report`` reads by default) in
perf-script text form (docs/record-format.md).  Where: ``--guest`` (a fresh
guest), ``--guest NAME`` (a guest from ``damon-eval guest boot``), ``--ssh
USER@HOST`` or this machine.  See docs/remote.md.

``damon-eval record export -i IN -o OUT --format F`` converts a record between
formats: ``perf_script`` and ``json``/``json_compressed`` are what damo reads;
``parquet`` is the harness's compact columnar cache; ``damon_data`` is the
seed-era binary format; ``tracefs`` is the kernel's trace text.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from damon_eval.errors import ConfigError

_FORMATS = ["perf_script", "tracefs", "json", "json_compressed", "damon_data", "parquet"]


def _export_parser() -> argparse.ArgumentParser:
    export = argparse.ArgumentParser(
        prog="damon-eval record export", description="write a record in another format"
    )
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
    return export


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be >= 1")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from damon_eval.commands._target import FRESH_GUEST, add_ssh_arguments

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.usage = (
        "damon-eval record [options] [--] COMMAND [ARGS...] | PID\n"
        "       damon-eval record [options] --workload ID\n"
        "       damon-eval record --ops paddr [options]\n"
        "       damon-eval record export -i IN -o OUT --format FORMAT"
    )
    parser.epilog = (
        "examples:\n"
        "  damon-eval record --guest --workload synthetic/zigzag --scale 0.2\n"
        "  damon-eval record --guest -o sleep.data 'sleep 5'\n"
        "  damon-eval record --ssh root@testbox $(ssh root@testbox pidof masim)\n"
        "  damon-eval report heats --guide -i damon.data\n"
        "  damon-eval record export -i damon.data -o damon.json --format json\n\n"
        "A single argument with spaces or shell syntax runs under `sh -c` (as `damo record\n"
        '"sleep 5"`); several arguments are the argv. Ctrl-C stops recording: the record so far\n'
        "is written (a command the recording started is stopped)."
    )
    parser.add_argument(
        "target",
        nargs=argparse.REMAINDER,
        metavar="COMMAND|PID",
        help="the command to run and record, or the pid of a running process",
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        metavar="FILE",
        help="record file (default: damon.data, as the seed's damo; perf-script text)",
    )
    parser.add_argument(
        "--workload", metavar="ID", help="record a registered workload, e.g. synthetic/zigzag"
    )
    parser.add_argument(
        "--scale", type=float, default=1.0, help="workload scale with --workload (default 1.0)"
    )
    parser.add_argument(
        "--ops",
        choices=("vaddr", "paddr"),
        default="vaddr",
        help="virtual address space of the target (default) or physical memory",
    )
    parser.add_argument(
        "--duration", type=float, metavar="S", help="stop after S seconds (a command is stopped)"
    )
    attrs = parser.add_argument_group("monitoring attributes (defaults: the seed's)")
    attrs.add_argument("-s", "--sample", type=_positive_int, default=5000, metavar="US",
                       help="sampling interval in µs (default 5000)")  # fmt: skip
    attrs.add_argument("-a", "--aggr", type=_positive_int, default=100000, metavar="US",
                       help="aggregation interval in µs (default 100000)")  # fmt: skip
    attrs.add_argument("-u", "--updr", type=_positive_int, default=1000000, metavar="US",
                       help="regions update interval in µs (default 1000000)")  # fmt: skip
    attrs.add_argument("-n", "--minr", type=_positive_int, default=10, metavar="N",
                       help="minimum number of regions (default 10)")  # fmt: skip
    attrs.add_argument("-m", "--maxr", type=_positive_int, default=1000, metavar="N",
                       help="maximum number of regions (default 1000)")  # fmt: skip
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--guest",
        nargs="?",
        const=FRESH_GUEST,
        metavar="NAME",
        help="record in a fresh guest of the default image, or in guest NAME "
        "(from `damon-eval guest boot`)",
    )
    where.add_argument(
        "--root",
        metavar="DIR",
        help="use the DAMON files of a fake kernel tree below DIR (tests)",
    )
    add_ssh_arguments(parser, where)
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=None,
        metavar="S",
        help="with --ssh or locally: longest pause between checks whether the recording "
        "ended (default 10 s with --ssh, 1 s locally)",
    )


def run(args: argparse.Namespace) -> int:
    words = list(args.target or [])
    if words and words[0] == "export":
        return _export(_export_parser().parse_args(words[1:]))
    return _record(args, words)


def _export(args: argparse.Namespace) -> int:
    from damon_eval.commands._record_input import load_input_record
    from damon_eval.records.writers import export_record

    export_record(load_input_record(args), args.output, args.format)
    return 0


def build_request(args: argparse.Namespace, words: list[str]):
    """The :class:`~damon_eval.measure.recording.RecordRequest` the options describe."""
    from damon_eval.damon.model import MonitoringAttrs
    from damon_eval.measure.recording import DEFAULT_OUTPUT, RecordRequest, parse_target

    if args.workload is None and args.scale != 1.0:
        raise ConfigError("--scale applies to --workload only")
    if not args.scale > 0:
        raise ConfigError(f"--scale {args.scale} must be > 0")
    if args.poll_interval is not None and not args.poll_interval > 0:
        raise ConfigError(f"--poll-interval {args.poll_interval} must be > 0 seconds")
    if args.workload:
        from damon_eval.workloads import get_workload

        get_workload(args.workload)  # unknown ids fail here, listing the valid ones
    target = parse_target(words, workload=args.workload, scale=args.scale, operations=args.ops)
    attrs = MonitoringAttrs(
        sample_us=args.sample,
        aggr_us=args.aggr,
        update_us=args.updr,
        min_nr_regions=args.minr,
        max_nr_regions=args.maxr,
    )
    if attrs.aggr_us > attrs.update_us:
        raise ConfigError(
            f"--aggr {attrs.aggr_us} must be <= --updr {attrs.update_us} (µs), as the kernel needs"
        )
    poll = args.poll_interval or (10.0 if getattr(args, "ssh", None) else 1.0)
    return RecordRequest(
        target=target,
        output=args.output or DEFAULT_OUTPUT,
        operations=args.ops,
        attrs=attrs,
        duration_s=args.duration,
        poll_interval_s=poll,
    )


def _record(args: argparse.Namespace, words: list[str]) -> int:
    from damon_eval.agent.build import build_agent_locally
    from damon_eval.commands._target import machine_selector
    from damon_eval.machine_select import open_machine
    from damon_eval.machines.local import LocalMachine
    from damon_eval.measure.recording import record, record_preparation

    request = build_request(args, words)
    selector = machine_selector(args, poll_interval_s=request.poll_interval_s)
    if selector.kind in ("local", "tree") and request.target.kind == "workload":
        raise ConfigError(
            "--workload needs a machine to prepare it on: add --guest or --ssh USER@HOST "
            "(locally, give the command itself)"
        )
    with open_machine(selector, record_preparation(request.target)) as machine:
        agent_path = run_dir = None
        if isinstance(machine, LocalMachine):
            agent_path = str(build_agent_locally())
            if machine.root is not None:  # a fake tree: keep the agent's files in it
                run_dir = str(machine.root / "var/tmp/damon-eval/record")
        outcome = record(machine, request, agent_path=agent_path, run_dir=run_dir)
    print(outcome.summary())
    return 0
