"""perf script / tracefs text records, parsed block by block (see :mod:`.textparse`)."""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

from damon_eval.errors import ConfigError, RecordFormatError
from damon_eval.records.assemble import SnapshotAssembler
from damon_eval.records.model import (
    EVENT_AGGREGATED,
    EVENT_BEFORE_APPLY,
    SnapshotChunk,
)
from damon_eval.records.reader import RecordReader
from damon_eval.records.textparse import (
    PAD,
    LineError,
    ParsedEvents,
    detect_event,
    locate_error,
    parse_local,
)

TEXT_BLOCK_BYTES = 4 << 20
_TEXT_PAD = bytes(PAD)
PARSE_THREADS_ENV = "DAMON_EVAL_PARSE_THREADS"
_MAX_PARSE_THREADS = 4


def parse_threads() -> int:
    """Threads that parse text blocks: ``$DAMON_EVAL_PARSE_THREADS``, else one per
    usable CPU (at most 4).  numpy releases the GIL in most of a block's parse, and
    on a loaded host more runnable threads also get more of the CPUs."""
    value = os.environ.get(PARSE_THREADS_ENV)
    if value is None:
        return max(1, min(_MAX_PARSE_THREADS, len(os.sched_getaffinity(0))))
    threads = int(value) if value.strip().isdigit() else 0
    if not 1 <= threads <= 64:
        raise ConfigError(f"{PARSE_THREADS_ENV}={value!r} must be a whole number from 1 to 64")
    return threads


def _complete_blocks(f: BinaryIO) -> Iterator[bytes]:
    """The file's complete lines in padded blocks of about TEXT_BLOCK_BYTES.

    Returns (as the generator's value) the unterminated tail, possibly empty.
    """
    carry = b""
    while True:
        block = f.read(TEXT_BLOCK_BYTES)
        if not block:
            return carry
        cut = block.rfind(b"\n")
        if cut < 0:
            carry += block
            continue
        # One copy: the carried partial line, the block's complete lines, padding.
        yield b"".join((carry, memoryview(block)[: cut + 1], _TEXT_PAD))
        carry = block[cut + 1 :]


def _done(fn: Callable[..., ParsedEvents], *args) -> Future[ParsedEvents]:
    """``fn(*args)`` run now, as a finished future (the one-thread path)."""
    future: Future[ParsedEvents] = Future()
    try:
        future.set_result(fn(*args))
    except LineError as exc:
        future.set_exception(exc)
    return future


class TextReader(RecordReader):
    """perf script / tracefs text, parsed block by block."""

    def __init__(
        self,
        path: Path,
        *,
        allow_partial: bool = False,
        event: str | None = None,
        format: str = "perf_script",
    ):
        super().__init__(path, allow_partial=allow_partial)
        if event not in (None, EVENT_AGGREGATED, EVENT_BEFORE_APPLY):
            raise RecordFormatError(
                f"unknown event {event!r} (valid: {EVENT_AGGREGATED}, {EVENT_BEFORE_APPLY})"
            )
        self.requested_event = event
        self.format = format

    def _parsed_blocks(self, f: BinaryIO) -> Iterator[ParsedEvents]:
        """Each block's events in file order, with file line numbers.

        Blocks are parsed ahead on worker threads within a bounded window, so
        memory stays a few blocks; the first block is parsed inline, so a small
        record starts no thread.  Sets ``self.event`` from the first block, and
        returns (as the generator's value) the tail and its line number.
        """
        threads = parse_threads()
        pending: deque[tuple[bytes, Future[ParsedEvents]]] = deque()
        pool: ThreadPoolExecutor | None = None
        submit: Callable[..., Future[ParsedEvents]] = _done
        n_blocks = 0
        line_no = 1

        def finish(block: bytes, parsed: Future[ParsedEvents]) -> ParsedEvents:
            nonlocal line_no
            try:
                events = parsed.result()
            except LineError as exc:
                raise locate_error(
                    block, exc, first_line_no=line_no, event=self.event, source=str(self.path)
                ) from None
            events.line_no += line_no
            line_no += events.n_lines
            return events

        blocks = _complete_blocks(f)
        try:
            while True:
                try:
                    block = next(blocks)
                except StopIteration as end:
                    tail = end.value
                    break
                if n_blocks == 0:
                    self.event = self.requested_event or detect_event(block) or EVENT_AGGREGATED
                elif n_blocks == 1 and threads > 1:  # a second block: now threads pay off
                    pool = ThreadPoolExecutor(threads, thread_name_prefix="damon-eval-parse")
                    submit = pool.submit
                n_blocks += 1
                pending.append((block, submit(parse_local, block, self.event)))
                while len(pending) > threads:
                    yield finish(*pending.popleft())
            while pending:
                yield finish(*pending.popleft())
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        return tail, line_no

    def _chunks(self) -> Iterator[SnapshotChunk]:
        source = str(self.path)
        assembler: SnapshotAssembler | None = None
        other_lines = 0
        n_events = 0
        with self.path.open("rb") as f:
            blocks = self._parsed_blocks(f)
            while True:
                try:
                    events = next(blocks)
                except StopIteration as end:
                    carry, line_no = end.value
                    break
                if assembler is None:
                    assembler = SnapshotAssembler(self.event, source)
                other_lines += events.other_event_lines
                n_events += events.size
                chunk = assembler.feed(events)
                self.targets = assembler.targets
                if chunk.n_snapshots:
                    yield chunk
        if assembler is None:
            assembler = SnapshotAssembler(self.requested_event or EVENT_AGGREGATED, source)
        last, n_truncated, first_truncated_line = assembler.finish(cut_line=bool(carry.strip()))
        self.targets = assembler.targets
        self.warnings.extend(assembler.warnings)
        if n_events == 0 and not carry.strip():
            raise RecordFormatError(
                f"record {self.path}: no {self.event} events found "
                "(expected perf script or tracefs lines of DAMON tracepoints)"
            )
        if last.n_snapshots:
            yield last
        complete = self.n_snapshots + last.n_snapshots
        if carry.strip():
            where = f"line {first_truncated_line or line_no} (the last line has no newline)"
            self._truncated(where, complete)
        elif n_truncated:
            self._truncated(f"line {first_truncated_line} (last snapshot incomplete)", complete)
        if other_lines:
            other = EVENT_BEFORE_APPLY if self.event == EVENT_AGGREGATED else EVENT_AGGREGATED
            self.warnings.append(
                f"record {self.path}: ignored {other_lines} {other} lines "
                f"(this report reads {self.event})"
            )
