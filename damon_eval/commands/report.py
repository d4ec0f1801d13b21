"""``damon-eval report raw|heats|wss|accuracy``: reports of a DAMON record.

Options follow the seed's ``damo report`` (usage.rst); the definitions are in
``docs/reports.md``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path

from damon_eval.commands._record_input import load_input_record
from damon_eval.errors import ConfigError


def _int_auto(text: str) -> int:
    """Integers in any base Python accepts (``0x7f00...`` for addresses)."""
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


def _add_input(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-i",
        "--input",
        type=Path,
        default=Path("damon.data"),
        metavar="FILE",
        help="record file (default: damon.data); format auto-detected",
    )
    parser.add_argument(
        "--input-format",
        choices=["perf_script", "tracefs", "json", "json_compressed", "damon_data", "parquet"],
        help="skip format detection",
    )
    parser.add_argument(
        "--event",
        choices=["damon_aggregated", "damos_before_apply"],
        help="trace event to read (default: the first one found)",
    )
    parser.add_argument(
        "--allow-partial",
        action="store_true",
        help="use the complete snapshots of a truncated record (warns) instead of failing",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="report", metavar="REPORT", required=True)

    raw = sub.add_parser("raw", help="every snapshot as text (the seed's layout)")
    _add_input(raw)
    raw.set_defaults(report_run=_run_raw)

    heats = sub.add_parser("heats", help="access heatmap as text, image or guide")
    _add_input(heats)
    heats.add_argument("--target", help="target id to draw (default: the one using most space)")
    heats.add_argument("--tres", type=int, default=500, help="time resolution (default 500)")
    heats.add_argument("--ares", type=int, default=500, help="address resolution (default 500)")
    heats.add_argument("--tmin", type=_int_auto, help="start time (ns, record clock)")
    heats.add_argument("--tmax", type=_int_auto, help="end time (ns, record clock)")
    heats.add_argument("--amin", type=_int_auto, help="lowest address")
    heats.add_argument("--amax", type=_int_auto, help="highest address (exclusive)")
    heats.add_argument(
        "--draw-range",
        choices=("largest", "hottest"),
        default="largest",
        help="without --amin/--amax: the largest used range (the seed's rule, default) or "
        "the one with the most access heat (damo's current default)",
    )
    heats.add_argument(
        "--heatmap", type=Path, metavar="FILE", help="draw an image (png, pdf, jpeg or svg)"
    )
    heats.add_argument(
        "--guide", action="store_true", help="print time spans and used address ranges"
    )
    heats.set_defaults(report_run=_run_heats)

    wss = sub.add_parser("wss", help="working set size distribution")
    _add_input(wss)
    wss.add_argument(
        "--range",
        "-r",
        type=int,
        nargs=3,
        default=[0, 101, 25],
        metavar=("START", "STOP", "STEP"),
        help="percentiles to print: range(START, STOP, STEP) (default 0 101 25)",
    )
    wss.add_argument("--sortby", "-s", choices=["size", "time"], default="size")
    wss.add_argument("--plot", "-p", type=Path, metavar="FILE", help="plot to an image file")
    wss.add_argument("--acc-thres", "-t", type=int, default=1, help="min nr_accesses (default 1)")
    wss.add_argument("--sz-thres", type=int, default=1, help="min region size (default 1)")
    wss.add_argument(
        "--exclude-samples",
        type=int,
        default=20,
        help="first snapshots of each target to skip (default 20, as damo)",
    )
    wss.add_argument(
        "--work-time",
        type=int,
        default=1,
        metavar="US",
        help="merge snapshots into windows of this many microseconds (default 1: none)",
    )
    wss.add_argument(
        "--collapse-targets",
        action="store_true",
        help="sum the targets per snapshot, as damo 3.4.3 does by default",
    )
    wss.set_defaults(report_run=_run_wss)

    acc = sub.add_parser("accuracy", help="DAMON versus a synthetic workload's ground truth")
    _add_input(acc)
    acc.add_argument(
        "--truth", type=Path, required=True, metavar="TRUTH.json", help="generator ground truth"
    )
    acc.add_argument("--target", help="target id (default: the truth's pid, or the only one)")
    acc.add_argument("--acc-thres", type=int, default=1, help="min nr_accesses (default 1)")
    acc.add_argument(
        "--settle",
        type=float,
        metavar="SECONDS",
        help="skip this long after each phase start (default: 10 aggregation intervals)",
    )
    acc.add_argument("--json", action="store_true", help="print JSON instead of a table")
    acc.set_defaults(report_run=_run_accuracy)


def _emit(lines: Iterable[str]) -> None:
    out = sys.stdout
    batch: list[str] = []
    for line in lines:
        batch.append(line)
        if len(batch) >= 4096:
            out.write("\n".join(batch) + "\n")
            batch = []
    if batch:
        out.write("\n".join(batch) + "\n")


def _run_raw(args: argparse.Namespace) -> int:
    from damon_eval.records.raw import raw_lines

    _emit(raw_lines(load_input_record(args)))
    return 0


def _run_heats(args: argparse.Namespace) -> int:
    from damon_eval.records import heats

    record = load_input_record(args)
    if args.guide:
        _emit(heats.guide_lines(record))
        return 0
    if args.heatmap is not None:
        heats.image_format(args.heatmap)  # fail before the work
    heatmap = heats.heatmap_grid(
        record,
        target=args.target,
        tres=args.tres,
        ares=args.ares,
        tmin=args.tmin,
        tmax=args.tmax,
        amin=args.amin,
        amax=args.amax,
        draw_range=args.draw_range,
    )
    if args.heatmap is not None:
        heats.plot_heatmap(heatmap, args.heatmap)
    else:
        _emit(heats.heats_lines(heatmap))
    return 0


def _run_wss(args: argparse.Namespace) -> int:
    from damon_eval.records import wss

    start, stop, step = args.range
    if step == 0:
        raise ConfigError("--range STEP must not be 0")
    percentiles = list(range(start, stop, step))
    record = load_input_record(args)
    dists = wss.wss_distribution(
        record,
        acc_thres=args.acc_thres,
        sz_thres=args.sz_thres,
        exclude_samples=args.exclude_samples,
        work_time_us=args.work_time,
        sortby=args.sortby,
        collapse_targets=args.collapse_targets,
    )
    if args.plot is not None:
        wss.plot_wss(dists, percentiles, args.plot)
        return 0
    _emit(wss.wss_lines(record, dists, percentiles))
    return 0


def _run_accuracy(args: argparse.Namespace) -> int:
    from damon_eval.records.accuracy import accuracy, accuracy_json, accuracy_text
    from damon_eval.workloads.truth import load_ground_truth

    truth = load_ground_truth(args.truth)
    record = load_input_record(args)
    frame = accuracy(
        record, truth, target=args.target, acc_thres=args.acc_thres, settle_s=args.settle
    )
    print(accuracy_json(frame) if args.json else accuracy_text(frame))
    return 0


def run(args: argparse.Namespace) -> int:
    return args.report_run(args)
