"""perf script / tracefs text records, parsed block by block (see :mod:`.textparse`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from damon_eval.errors import RecordFormatError
from damon_eval.records.assemble import SnapshotAssembler
from damon_eval.records.model import (
    EVENT_AGGREGATED,
    EVENT_BEFORE_APPLY,
    SnapshotChunk,
)
from damon_eval.records.reader import RecordReader
from damon_eval.records.textparse import PAD, detect_event, parse_block

TEXT_BLOCK_BYTES = 4 << 20
_TEXT_PAD = bytes(PAD)


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

    def _chunks(self) -> Iterator[SnapshotChunk]:
        source = str(self.path)
        assembler: SnapshotAssembler | None = None
        other_lines = 0
        n_events = 0
        line_no = 1
        carry = b""
        with self.path.open("rb") as f:
            while True:
                block = f.read(TEXT_BLOCK_BYTES)
                if not block:
                    break
                cut = block.rfind(b"\n")
                if cut < 0:
                    carry += block
                    continue
                # One copy: the carried partial line, the block's complete lines, padding.
                complete = b"".join((carry, memoryview(block)[: cut + 1], _TEXT_PAD))
                carry = block[cut + 1 :]
                if assembler is None:
                    self.event = self.requested_event or detect_event(complete) or EVENT_AGGREGATED
                    assembler = SnapshotAssembler(self.event, source)
                events = parse_block(
                    complete, first_line_no=line_no, event=self.event, source=source, padded=True
                )
                line_no += events.n_lines
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
