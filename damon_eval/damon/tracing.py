"""Recording DAMON monitoring results through a tracefs instance of our own.

The harness never touches the top-level trace buffer: it creates
``<tracefs>/instances/damon-eval``, sets its ``trace_clock`` to ``mono``
(timestamps are CLOCK_MONOTONIC seconds, the clock of the workload's ground
truth), enables ``damon:damon_aggregated`` in that instance only, streams the
instance's ``trace_pipe`` and removes the instance afterwards.

Records are stored in ``perf script`` text form, one ``damon:damon_aggregated``
event per line (see docs/record-format.md); :func:`tracefs_line_to_perf_script`
converts one trace_pipe line.  It is a pure function so the guest agent's
output can be converted the same way.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import select
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from damon_eval.damon.errors import (
    DamonBusyError,
    DamonError,
    DamonUnsupportedError,
    translate_fs_error,
)
from damon_eval.errors import FsError
from damon_eval.fs import (
    Exists,
    FileSystem,
    ListDirIfExists,
    LocalFs,
    MakeDir,
    Op,
    Read,
    RemoveDir,
    Write,
    WriteIfExists,
)

log = logging.getLogger(__name__)

TRACEFS_CANDIDATES = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")
INSTANCE_NAME = "damon-eval"
RECORD_EVENT = "damon_aggregated"
TRACE_CLOCK = "mono"

# kdamond.0-516 [001] ..... 41.751439: damon_aggregated: target_id=0 nr_regions=18 a-b: 8 0
# Optional columns: "(tgid)" after the task, the irq-info flags before the timestamp.
_TRACE_LINE = re.compile(
    r"^\s*(?P<comm>.+?)-(?P<pid>\d+)\s+(?:\(\s*[-\d.]+\)\s+)?\[(?P<cpu>\d+)\]\s+"
    r"(?:(?P<flags>[^\s:]+)\s+)?(?P<ts>\d+\.\d+):\s+(?P<event>[A-Za-z0-9_]+):\s+(?P<body>.*?)\s*$"
)
_AGGREGATED_BODY = re.compile(
    r"^target_id=(?P<target_id>\d+) nr_regions=(?P<nr_regions>\d+) "
    r"(?P<start>\d+)-(?P<end>\d+): (?P<nr_accesses>\d+)(?: (?P<age>\d+))?$"
)
_LOST = re.compile(r"^\s*CPU:(?P<cpu>\d+) \[LOST (?P<count>\d+) EVENTS\]\s*$")


def tracefs_probe_ops(candidates: Iterable[str] = TRACEFS_CANDIDATES) -> list[Op]:
    """Read-only operations telling where tracefs is and which damon tracepoints it has
    (part of a larger batch; see :func:`tracefs_from_results`)."""
    ops: list[Op] = []
    for candidate in candidates:
        ops += [Exists(f"{candidate}/trace_clock"), ListDirIfExists(f"{candidate}/events/damon")]
    return ops


def tracefs_from_results(results: Mapping[Op, Any], candidates: Iterable[str]) -> str | None:
    """The first candidate whose ``trace_clock`` exists, from the results of
    :func:`tracefs_probe_ops`."""
    return next((c for c in candidates if results.get(Exists(f"{c}/trace_clock"))), None)


def tracepoints_from_results(results: Mapping[Op, Any], tracefs: str | None) -> tuple[str, ...]:
    if tracefs is None:
        return ()
    listing = results.get(ListDirIfExists(f"{tracefs}/events/damon")) or ()
    return tuple(n for n in listing if n not in ("enable", "filter"))


def find_tracefs(fs: FileSystem, candidates: Iterable[str] = TRACEFS_CANDIDATES) -> str | None:
    """The first mounted tracefs among ``candidates`` (one round trip), or None."""
    candidates = tuple(candidates)
    ops: list[Op] = [Exists(f"{c}/trace_clock") for c in candidates]
    return tracefs_from_results(dict(zip(ops, fs.execute(ops), strict=True)), candidates)


def damon_tracepoints(fs: FileSystem, tracefs: str | None) -> tuple[str, ...]:
    """Names of the ``damon:*`` tracepoints under ``tracefs`` (empty if none; one round trip)."""
    if tracefs is None:
        return ()
    op = ListDirIfExists(f"{tracefs}/events/damon")
    return tracepoints_from_results({op: fs.execute([op])[0]}, tracefs)


def tracefs_line_to_perf_script(line: str) -> str | None:
    """One trace_pipe line as ``perf script`` prints the same event, or None.

    ``kdamond.0-516 [001] ..... 41.751439: damon_aggregated: target_id=0 nr_regions=18
    140398567211008-140398583341056: 8 0`` becomes ``kdamond.0   516 [001] 41.751439:
    damon:damon_aggregated: target_id=0 nr_regions=18 140398567211008-140398583341056: 8 0``
    (the command name right-aligned in 16 columns, as perf prints it).  Lines of
    other events, lost-event notes and malformed lines give None.
    """
    match = _TRACE_LINE.match(line)
    if match is None or match["event"] != RECORD_EVENT:
        return None
    body = " ".join(match["body"].split())
    if _AGGREGATED_BODY.match(body) is None:
        return None
    comm = re.sub(r"\s", "_", match["comm"].strip())
    return (
        f"{comm:>16} {int(match['pid']):>5} [{int(match['cpu']):03d}] {match['ts']}: "
        f"damon:{RECORD_EVENT}: {body}"
    )


def parse_lost_events(line: str) -> int | None:
    """The count of a trace_pipe ``CPU:N [LOST M EVENTS]`` line, else None."""
    match = _LOST.match(line)
    return int(match["count"]) if match else None


@dataclass
class ConversionStats:
    """What a conversion saw: events written, events the kernel dropped, lines skipped."""

    nr_events: int = 0
    nr_lost_events: int = 0
    nr_skipped_lines: int = 0
    first_timestamp: str | None = None
    last_timestamp: str | None = None

    def to_dict(self) -> dict[str, int | str | None]:
        return {
            "nr_events": self.nr_events,
            "nr_lost_events": self.nr_lost_events,
            "nr_skipped_lines": self.nr_skipped_lines,
            "first_timestamp": self.first_timestamp,
            "last_timestamp": self.last_timestamp,
        }


@dataclass
class TraceConverter:
    """Converts trace_pipe lines one by one and counts what it saw."""

    stats: ConversionStats = field(default_factory=ConversionStats)

    def feed(self, line: str) -> str | None:
        converted = tracefs_line_to_perf_script(line)
        if converted is not None:
            self.stats.nr_events += 1
            timestamp = converted.split("]", 1)[1].split(":", 1)[0].strip()
            if self.stats.first_timestamp is None:
                self.stats.first_timestamp = timestamp
            self.stats.last_timestamp = timestamp
            return converted
        lost = parse_lost_events(line)
        if lost is not None:
            self.stats.nr_lost_events += lost
        elif line.strip():
            self.stats.nr_skipped_lines += 1
        return None


def convert_trace_lines(lines: Iterable[str], out: TextIO) -> ConversionStats:
    """Write the perf-script form of every ``damon_aggregated`` line of ``lines`` to ``out``."""
    converter = TraceConverter()
    for line in lines:
        converted = converter.feed(line)
        if converted is not None:
            out.write(converted + "\n")
    return converter.stats


def record_lines(lines: Iterable[str], out_path: Path) -> ConversionStats:
    """Convert a stream of trace_pipe lines into a record file, published when complete.

    For streams from elsewhere, e.g. the stdout of ``ssh host cat <trace_pipe>``:
    the lines go to ``<out>.partial``, which is renamed to ``out_path`` at the end.
    """
    out_path = Path(out_path)
    partial = out_path.with_name(out_path.name + ".partial")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with open(partial, "w") as out:
        stats = convert_trace_lines(lines, out)
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, out_path)
    return stats


@dataclass
class TraceInstance:
    """A tracefs instance of our own with ``damon:damon_aggregated`` enabled.

    Use as a context manager; the instance is removed on exit.
    """

    fs: FileSystem
    tracefs: str
    name: str = INSTANCE_NAME
    events: tuple[str, ...] = (RECORD_EVENT,)
    clock: str = TRACE_CLOCK
    buffer_size_kb: int | None = None
    created: bool = field(default=False, init=False)

    @property
    def path(self) -> str:
        return f"{self.tracefs}/instances/{self.name}"

    @property
    def trace_pipe(self) -> str:
        return f"{self.path}/trace_pipe"

    def _enable_path(self, root: str, event: str) -> str:
        return f"{root}/events/damon/{event}/enable"

    def create(self) -> None:
        """Make the instance, set its clock, enable the events and read it all back in
        one round trip (tracefs creates the instance's files on mkdir).  A stale
        instance (mkdir: EEXIST) costs a second one; a missing tracepoint, one to
        remove the instance again."""
        if not self.tracefs:
            raise DamonUnsupportedError(
                f"no tracefs mounted on {self.fs.description} (looked for "
                f"{' and '.join(TRACEFS_CANDIDATES)}); mount it: mount -t tracefs nodev "
                "/sys/kernel/tracing"
            )
        checks: list[Op] = [Exists(self._enable_path(self.tracefs, e)) for e in self.events]
        doing = f"creating tracefs instance {self.path}"
        try:
            self._make([*checks, MakeDir(self.path)])
            return
        except FsError as exc:
            if exc.index != len(checks) or exc.errno != errno.EEXIST:
                raise translate_fs_error(exc, doing) from exc
            self._refuse_missing(checks, exc.completed, exc)
        log.warning("removing stale tracefs instance %s (left by an earlier run?)", self.path)
        try:
            self._make([RemoveDir(self.path), MakeDir(self.path)])
        except FsError as exc:
            if exc.index == 0:
                raise DamonBusyError(
                    f"tracefs instance {self.path} already exists and cannot be removed "
                    f"({exc}); is another damon-eval recording on this machine?"
                ) from exc
            raise translate_fs_error(exc, doing) from exc

    def _make(self, prefix: list[Op]) -> None:
        """Run ``prefix`` (ending with the mkdir) and the configuration as one batch.

        Raises the FsError itself when the instance was not made (the caller
        explains it); otherwise removes the instance again on any failure."""
        configure = self._configure_ops()
        try:
            results = self.fs.execute([*prefix, *configure])
        except FsError as exc:
            made = exc.index >= len(prefix) if exc.index is not None else self.fs.exists(self.path)
            if not made:
                raise
            self.created = True
            self.remove()
            self._refuse_missing(prefix, exc.completed, exc)
            raise translate_fs_error(exc, f"configuring tracefs instance {self.path}") from exc
        self.created = True
        try:
            self._check_configured(configure, results[len(prefix) :])
        except BaseException:
            self.remove()
            raise

    def _refuse_missing(self, ops: list[Op], results: tuple[object, ...], cause: Exception) -> None:
        """Raise if the leading Exists checks of ``ops`` found an event missing."""
        missing = [
            e
            for e, op, present in zip(self.events, ops, results, strict=False)
            if isinstance(op, Exists) and present is False
        ]
        if missing:
            raise DamonUnsupportedError(
                f"tracepoint(s) {', '.join('damon:' + e for e in missing)} not available "
                f"under {self.tracefs}/events/damon on {self.fs.description}"
            ) from cause

    def _configure_ops(self) -> list[Op]:
        ops: list[Op] = [
            Write(f"{self.path}/trace_clock", self.clock),
            Read(f"{self.path}/trace_clock"),
        ]
        if self.buffer_size_kb is not None:
            ops.append(Write(f"{self.path}/buffer_size_kb", str(self.buffer_size_kb)))
        for event in self.events:
            ops.append(Write(self._enable_path(self.path, event), "1"))
            ops.append(Read(self._enable_path(self.path, event)))
        return ops

    def _check_configured(self, ops: list[Op], results: list[object]) -> None:
        clocks = str(results[1])
        if f"[{self.clock}]" not in clocks.split():
            raise DamonError(
                f"{self.path}/trace_clock did not switch to {self.clock!r}: it reads {clocks!r}"
            )
        enables = [str(r) for op, r in zip(ops, results, strict=True) if isinstance(op, Read)][1:]
        if any(value.strip() != "1" for value in enables):
            raise DamonError(f"enabling {', '.join(self.events)} in {self.path} did not stick")

    def remove(self) -> None:
        """Disable the events and remove the instance in one round trip (the
        trace_pipe reader must be gone)."""
        if not self.created:
            return
        # IfExists: after a failed create an event may have no enable file.
        disable: list[Op] = [
            WriteIfExists(self._enable_path(self.path, e), "0") for e in self.events
        ]
        try:
            self.fs.execute([*disable, RemoveDir(self.path)])
        except FsError as exc:
            if exc.index is not None and exc.index >= len(disable):
                raise translate_fs_error(exc, f"removing tracefs instance {self.path}") from exc
            log.warning("could not disable events in %s: %s", self.path, exc)
            try:
                self.fs.execute([RemoveDir(self.path)])
            except FsError as again:
                raise translate_fs_error(again, f"removing tracefs instance {self.path}") from again
        self.created = False

    def __enter__(self) -> TraceInstance:
        self.create()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.remove()


class TraceRecorder:
    """Streams a local instance's ``trace_pipe`` into a perf-script record file.

    For the local machine (or a fake tree): it reads the pipe through
    :class:`~damon_eval.fs.LocalFs`.  Guests stream the same pipe with the
    guest agent and convert with :func:`tracefs_line_to_perf_script`.  The
    record is written to ``<out>.partial`` and renamed to ``out`` by
    :meth:`stop`, so a record file that exists is complete.
    """

    def __init__(
        self, fs: LocalFs, instance: TraceInstance, out_path: Path, *, poll_s: float = 0.1
    ):
        if not isinstance(fs, LocalFs):
            raise DamonUnsupportedError(
                "TraceRecorder streams trace_pipe through a local file system; remote "
                "targets stream it with the guest agent"
            )
        self.fs = fs
        self.instance = instance
        self.out_path = Path(out_path)
        self.poll_s = poll_s
        self._partial = self.out_path.with_name(self.out_path.name + ".partial")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._converter = TraceConverter()

    @property
    def stats(self) -> ConversionStats:
        return self._converter.stats

    def start(self) -> None:
        if self._thread is not None:
            raise DamonError("TraceRecorder already started")
        pipe_path = self.fs.host_path(self.instance.trace_pipe)
        try:
            fd = os.open(pipe_path, os.O_RDONLY | os.O_NONBLOCK)
        except OSError as exc:
            raise DamonError(f"cannot open {self.instance.trace_pipe}: {exc.strerror}") from exc
        self.out_path.parent.mkdir(parents=True, exist_ok=True)
        out = open(self._partial, "w")  # noqa: SIM115 - closed by the thread
        self._thread = threading.Thread(
            target=self._pump, args=(fd, out), name="damon-eval-trace", daemon=True
        )
        self._thread.start()

    def _pump(self, fd: int, out: TextIO) -> None:
        pending = b""
        try:
            while True:
                stopping = self._stop.is_set()
                chunk = self._read_available(fd)
                if chunk:
                    pending += chunk
                    *lines, pending = pending.split(b"\n")
                    for line in lines:
                        converted = self._converter.feed(line.decode(errors="replace"))
                        if converted is not None:
                            out.write(converted + "\n")
                    continue
                if stopping:
                    break
                time.sleep(self.poll_s)
            if pending.strip():
                converted = self._converter.feed(pending.decode(errors="replace"))
                if converted is not None:
                    out.write(converted + "\n")
            out.flush()
            os.fsync(out.fileno())
        except BaseException as exc:  # reported by stop()
            self._error = exc
        finally:
            out.close()
            os.close(fd)

    def _read_available(self, fd: int) -> bytes:
        ready, _, _ = select.select([fd], [], [], self.poll_s)
        if not ready:
            return b""
        try:
            return os.read(fd, 1 << 16)
        except BlockingIOError:
            return b""
        except OSError as exc:
            if exc.errno == errno.EINTR:
                return b""
            raise

    def stop(self) -> ConversionStats:
        """Drain the pipe, publish the record file and return what was seen."""
        if self._thread is None:
            return self.stats
        self._stop.set()
        self._thread.join()
        self._thread = None
        if self._error is not None:
            raise DamonError(f"recording {self.instance.trace_pipe} failed: {self._error}")
        os.replace(self._partial, self.out_path)
        return self.stats

    def __enter__(self) -> TraceRecorder:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
