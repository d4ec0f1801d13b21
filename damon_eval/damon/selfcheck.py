"""Checks that DAMON on a real kernel does what the harness relies on.

Each check takes the target's :class:`~damon_eval.fs.FileSystem` and a
:data:`~damon_eval.fs.ScriptRunner` (runs a shell script on the same machine),
so it runs against a guest, an SSH host or the local machine alike.  The guest
integration tests call :func:`run_selfchecks`; each result says pass, fail or
skip and why.

* :func:`check_vaddr_hot_buffer`: a process keeps touching a known buffer; a
  vaddr context with a ``stat`` scheme must find (most of) that buffer hot in
  its tried regions, and the scheme's statistics must count tries.
* :func:`check_paddr`: a paddr context over the largest System RAM range runs
  and its tried regions lie inside that range and cover most of it.
* :func:`check_tracefs_recording`: recording through our tracefs instance
  yields ``damon_aggregated`` events that show the buffer hot, in time order,
  with CLOCK_MONOTONIC timestamps.
"""

from __future__ import annotations

import logging
import shlex
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from damon_eval.damon.backend import TriedRegion
from damon_eval.damon.controller import DamonController, OwnershipRegistry, build_kdamond
from damon_eval.damon.errors import DamonError, DamonUnsupportedError
from damon_eval.damon.iomem import system_ram_target
from damon_eval.damon.model import MonitoringAttrs, Target
from damon_eval.damon.schemes import parse_schemes
from damon_eval.damon.tracing import TraceConverter, TraceInstance, find_tracefs
from damon_eval.errors import DamonEvalError
from damon_eval.fs import FileSystem, ScriptRunner

log = logging.getLogger(__name__)

STAT_EVERYTHING = "min max min max min max stat"
"""A scheme that matches every region and does nothing: its tried regions are a snapshot."""
TOUCHER_LIFETIME_S = 1800.0
"""An upper bound only: the toucher is killed when the check ends.  A slow, shared
TCG host can take minutes per check, and a target that exits stops the kdamond."""

# The toucher rewrites the whole buffer with memset in a tight loop (a per-page
# Python loop was far slower under TCG, and some checks then saw the buffer
# cold).  Each pass also flips the buffer's protection, which flushes the
# TLB: without that, DAMON under TCG saw the 64 MiB buffer erratically (mean
# nr_accesses 1.3-11.2 of 20 from one snapshot to the next, against a steady
# 9.0-12.6; benchmarks/tcg_access_visibility.py).  DAMON clears accessed bits without a TLB
# flush, so a cached translation can hide re-accesses; that is the likely cause.
_TOUCHER = r"""
import ctypes, mmap, os, sys, time
size, duration, info = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
buf = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
addr = ctypes.addressof(ctypes.c_char.from_buffer(buf))
libc = ctypes.CDLL(None, use_errno=True)
libc.mprotect.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
ctypes.memset(addr, 1, size)
with open(info + ".tmp", "w") as f:
    f.write("%d %d %d\n" % (os.getpid(), addr, addr + size))
os.rename(info + ".tmp", info)
end = time.monotonic() + duration
passes = 0
flush_tlb = sys.argv[4] == "flush"
while time.monotonic() < end:
    if flush_tlb:
        libc.mprotect(addr, size, mmap.PROT_READ)
        libc.mprotect(addr, size, mmap.PROT_READ | mmap.PROT_WRITE)
    passes += 1
    ctypes.memset(addr, passes & 0xFF, size)
"""


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The outcome of one check: ``status`` is ``pass``, ``fail`` or ``skip``."""

    name: str
    status: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "pass"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "message": self.message,
            "details": self.details,
        }


class BufferToucher:
    """A Python process on the target that keeps rewriting a private buffer (memset).

    ``flush_tlb`` (default) flushes its TLB before each pass; see the comment
    on ``_TOUCHER``.  ``benchmarks/tcg_access_visibility.py`` turns it off to
    measure what the flush changes.
    """

    def __init__(
        self,
        fs: FileSystem,
        runner: ScriptRunner,
        *,
        size_bytes: int = 64 << 20,
        duration_s: float = TOUCHER_LIFETIME_S,
        info_path: str = "/tmp/damon-eval-toucher.info",
        python: str = "python3",
        flush_tlb: bool = True,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.fs = fs
        self.flush_tlb = flush_tlb
        self.runner = runner
        self.size_bytes = size_bytes
        self.duration_s = duration_s
        self.info_path = info_path
        self.python = python
        self.sleep = sleep
        self.pid: int | None = None
        self.start_addr = 0
        self.end_addr = 0

    def start(self, *, timeout_s: float = 60.0) -> None:
        script = (
            f"rm -f {shlex.quote(self.info_path)}\n"
            f"nohup {shlex.quote(self.python)} -c {shlex.quote(_TOUCHER)} {self.size_bytes} "
            f"{self.duration_s} {shlex.quote(self.info_path)} "
            f"{'flush' if self.flush_tlb else 'noflush'} >/dev/null 2>&1 &\n"
            "echo $!\n"
        )
        result = self.runner(script)
        if result.exit_status != 0:
            raise DamonError(f"could not start the buffer toucher: {result.stderr.strip()}")
        deadline = time.monotonic() + timeout_s
        while not self.fs.exists(self.info_path):
            if time.monotonic() > deadline:
                raise DamonError(f"the buffer toucher wrote no {self.info_path} in {timeout_s} s")
            self.sleep(0.2)
        pid, start, end = (int(x) for x in self.fs.read(self.info_path).split())
        self.pid, self.start_addr, self.end_addr = pid, start, end

    def stop(self) -> None:
        if self.pid is not None:
            self.runner(f"kill {self.pid} 2>/dev/null; rm -f {shlex.quote(self.info_path)}\n")
            self.pid = None

    def __enter__(self) -> BufferToucher:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _overlap(start: int, end: int, lo: int, hi: int) -> int:
    return max(0, min(end, hi) - max(start, lo))


def hot_bytes(regions: Iterable[TriedRegion], lo: int, hi: int) -> tuple[int, int]:
    """Bytes of ``[lo, hi)`` in regions with nr_accesses >= 1, and hot bytes outside it."""
    inside = outside = 0
    for region in regions:
        if region.nr_accesses < 1:
            continue
        overlap = _overlap(region.start, region.end, lo, hi)
        inside += overlap
        outside += region.size - overlap
    return inside, outside


def union_length(intervals: Iterable[tuple[int, int]]) -> int:
    """Total length covered by half-open intervals (overlaps counted once)."""
    total, reach = 0, None
    for start, end in sorted(intervals):
        if reach is None or start >= reach:
            total += end - start
            reach = end
        elif end > reach:
            total += end - reach
            reach = end
    return total


def check_vaddr_hot_buffer(
    fs: FileSystem,
    runner: ScriptRunner,
    *,
    size_bytes: int = 64 << 20,
    monitor_s: float = 10.0,
    snapshots: int = 5,
    min_hot_fraction: float = 0.5,
    attrs: MonitoringAttrs | None = None,
    registry: OwnershipRegistry | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> CheckResult:
    """A vaddr ``stat`` scheme must see the touched buffer hot and count its tries.

    One tried-regions snapshot covers one aggregation interval; on a slow (TCG,
    shared) machine a page touched every few hundred milliseconds can miss all
    20 samples of one interval, so the check takes ``snapshots`` snapshots over
    ``monitor_s`` and counts a byte hot if any snapshot saw it accessed.
    """
    name = "vaddr_hot_buffer"
    controller = DamonController(fs, registry=registry)
    hot_intervals: list[tuple[int, int]] = []
    nr_regions: list[int] = []
    max_nr_accesses = 0
    with BufferToucher(
        fs, runner, size_bytes=size_bytes, duration_s=TOUCHER_LIFETIME_S, sleep=sleep
    ) as toucher:
        assert toucher.pid is not None
        lo, hi = toucher.start_addr, toucher.end_addr
        kdamond, schemes = build_kdamond(
            "vaddr", [Target(toucher.pid)], attrs=attrs, schemes=parse_schemes(STAT_EVERYTHING)
        )
        with controller.session(kdamond, schemes=schemes) as session:
            for _ in range(max(1, snapshots)):
                sleep(monitor_s / max(1, snapshots))
                try:
                    (tried,) = session.tried_regions([0])
                except DamonUnsupportedError as exc:
                    return CheckResult(name, "skip", str(exc))
                nr_regions.append(len(tried.regions))
                for region in tried.regions:
                    overlap = _overlap(region.start, region.end, lo, hi)
                    if overlap and region.nr_accesses >= 1:
                        hot_intervals.append((max(region.start, lo), min(region.end, hi)))
                    if overlap:
                        max_nr_accesses = max(max_nr_accesses, region.nr_accesses)
            (stats,) = session.scheme_stats()
    inside = union_length(hot_intervals)
    details = {
        "buffer": [lo, hi],
        "hot_bytes_in_buffer": inside,
        "nr_regions": nr_regions,
        "max_nr_accesses_in_buffer": max_nr_accesses,
        "stats": stats.to_dict(),
    }
    fraction = inside / size_bytes
    if fraction < min_hot_fraction:
        return CheckResult(
            name,
            "fail",
            f"only {fraction:.0%} of the touched {size_bytes >> 20} MiB buffer was found hot in "
            f"{len(nr_regions)} snapshots (want >= {min_hot_fraction:.0%})",
            details,
        )
    if stats.nr_tried == 0:
        return CheckResult(name, "fail", "the stat scheme's nr_tried stayed 0", details)
    return CheckResult(
        name,
        "pass",
        f"{fraction:.0%} of the buffer found hot in {len(nr_regions)} snapshots",
        details,
    )


def check_paddr(
    fs: FileSystem,
    runner: ScriptRunner,
    *,
    monitor_s: float = 5.0,
    min_coverage: float = 0.9,
    registry: OwnershipRegistry | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> CheckResult:
    """A paddr context over the largest System RAM range runs and reports regions inside it."""
    name = "paddr_system_ram"
    controller = DamonController(fs, registry=registry)
    target = system_ram_target(fs)
    ram = target.regions[0]
    kdamond, schemes = build_kdamond("paddr", [target], schemes=parse_schemes(STAT_EVERYTHING))
    with controller.session(kdamond, schemes=schemes) as session:
        sleep(monitor_s)
        running = session.is_running()
        try:
            (tried,) = session.tried_regions([0])
        except DamonUnsupportedError as exc:
            return CheckResult(name, "skip", str(exc))
    outside = [r for r in tried.regions if r.start < ram.start or r.end > ram.end]
    covered = sum(_overlap(r.start, r.end, ram.start, ram.end) for r in tried.regions)
    details = {
        "system_ram": [ram.start, ram.end],
        "nr_regions": len(tried.regions),
        "covered_bytes": covered,
        "hot_bytes": hot_bytes(tried.regions, ram.start, ram.end)[0],
        "kdamond_running": running,
    }
    if not running:
        return CheckResult(name, "fail", "the paddr kdamond stopped by itself", details)
    if outside:
        return CheckResult(name, "fail", f"{len(outside)} tried regions lie outside RAM", details)
    if covered < min_coverage * ram.size:
        return CheckResult(
            name, "fail", f"tried regions cover only {covered / ram.size:.0%} of RAM", details
        )
    return CheckResult(name, "pass", f"{len(tried.regions)} regions cover RAM", details)


def target_monotonic_s(runner: ScriptRunner, python: str = "python3") -> float:
    """The target's CLOCK_MONOTONIC now, in seconds."""
    result = runner(f"{shlex.quote(python)} -c 'import time; print(time.monotonic())'\n")
    try:
        return float(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise DamonError(f"cannot read the target's monotonic clock: {result.stderr}") from None


def check_tracefs_recording(
    fs: FileSystem,
    runner: ScriptRunner,
    *,
    size_bytes: int = 64 << 20,
    record_s: int = 5,
    registry: OwnershipRegistry | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> CheckResult:
    """Events from our tracefs instance: present, time-ordered, on CLOCK_MONOTONIC, buffer hot."""
    name = "tracefs_recording"
    tracefs = find_tracefs(fs)
    if tracefs is None:
        return CheckResult(name, "skip", f"no tracefs mounted on {fs.description}")
    controller = DamonController(fs, registry=registry)
    converter = TraceConverter()
    events: list[str] = []
    with (
        BufferToucher(
            fs, runner, size_bytes=size_bytes, duration_s=record_s + 60, sleep=sleep
        ) as toucher,
        TraceInstance(fs, tracefs) as instance,
    ):
        assert toucher.pid is not None
        kdamond, _ = build_kdamond("vaddr", [Target(toucher.pid)])
        with controller.session(kdamond):
            result = runner(f"timeout {record_s} cat {shlex.quote(instance.trace_pipe)}\n")
            now = target_monotonic_s(runner)
        for line in result.stdout.splitlines():
            converted = converter.feed(line)
            if converted is not None:
                events.append(converted)
    stats = converter.stats
    timestamps = [float(e.split("]", 1)[1].split(":", 1)[0]) for e in events]
    hot_events = 0
    for event in events:
        body = event.split("damon:damon_aggregated:", 1)[1].split()
        start, end = (int(x) for x in body[2].rstrip(":").split("-"))
        if int(body[3]) >= 1 and _overlap(start, end, toucher.start_addr, toucher.end_addr):
            hot_events += 1
    details = {**stats.to_dict(), "hot_events_in_buffer": hot_events, "monotonic_now": now}
    if not events:
        return CheckResult(name, "fail", "no damon_aggregated events were recorded", details)
    if timestamps != sorted(timestamps):
        return CheckResult(name, "fail", "events are not in time order", details)
    if not now - record_s - 10 <= timestamps[-1] <= now + 1:
        return CheckResult(
            name,
            "fail",
            f"last event at {timestamps[-1]:.3f} s is not near the target's CLOCK_MONOTONIC "
            f"{now:.3f} s: the instance clock is not 'mono'?",
            details,
        )
    if hot_events == 0:
        return CheckResult(name, "fail", "no event shows the touched buffer accessed", details)
    return CheckResult(
        name, "pass", f"{len(events)} events, {hot_events} show the buffer hot", details
    )


def run_selfchecks(
    fs: FileSystem,
    runner: ScriptRunner,
    *,
    registry: OwnershipRegistry | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> list[CheckResult]:
    """Every check, in order; a check that raises is reported as failed with the error."""
    results = []
    for check in (check_vaddr_hot_buffer, check_paddr, check_tracefs_recording):
        name = check.__name__.removeprefix("check_")
        try:
            results.append(check(fs, runner, registry=registry, sleep=sleep))
        except DamonEvalError as exc:
            results.append(CheckResult(name, "fail", f"{type(exc).__name__}: {exc}"))
        log.info("selfcheck %s: %s", name, results[-1].status)
    return results
