"""tracefs recording: line conversion, the instance life cycle, streaming, and damo reading it."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from fakekernel import TRACEFS, FakeKernel

from damon_eval.damon.errors import DamonBusyError, DamonUnsupportedError
from damon_eval.damon.tracing import (
    TraceInstance,
    TraceRecorder,
    convert_trace_lines,
    damon_tracepoints,
    find_tracefs,
    parse_lost_events,
    record_lines,
    tracefs_line_to_perf_script,
)

GUEST_LINE = (
    "kdamond.0-516 [001] ..... 41.751439: damon_aggregated: target_id=0 nr_regions=18 "
    "140398567211008-140398583341056: 8 0"
)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            GUEST_LINE,
            "       kdamond.0   516 [001] 41.751439: damon:damon_aggregated: target_id=0 "
            "nr_regions=18 140398567211008-140398583341056: 8 0",
        ),
        # trace_pipe pads the task column; trace-cmd style extra spaces in the body.
        (
            "           <...>-129062 [000] ..... 101029.459185: damon_aggregated:     "
            "target_id=0 nr_regions=11 8335224832-8371830784: 0 560",
            "           <...> 129062 [000] 101029.459185: damon:damon_aggregated: target_id=0 "
            "nr_regions=11 8335224832-8371830784: 0 560",
        ),
        # No flags column (some tracers), a tgid column, the pre-age format.
        (
            "kdamond.0-12 [005] 5.000001: damon_aggregated: target_id=1 nr_regions=2 0-4096: 3 9",
            "       kdamond.0    12 [005] 5.000001: damon:damon_aggregated: target_id=1 "
            "nr_regions=2 0-4096: 3 9",
        ),
        (
            "kdamond.0-12 (   12) [005] d..2. 5.000001: damon_aggregated: target_id=1 "
            "nr_regions=2 0-4096: 3",
            "       kdamond.0    12 [005] 5.000001: damon:damon_aggregated: target_id=1 "
            "nr_regions=2 0-4096: 3",
        ),
        # A task name with a dash and a space.
        (
            "my-task x-77 [000] 1.5: damon_aggregated: target_id=0 nr_regions=1 1-2: 0 0",
            "       my-task_x    77 [000] 1.5: damon:damon_aggregated: target_id=0 "
            "nr_regions=1 1-2: 0 0",
        ),
        ("kdamond.0-1 [000] 1.5: damos_before_apply: ctx_idx=0 scheme_idx=0", None),
        ("kdamond.0-1 [000] 1.5: damon_aggregated: target_id=x nr_regions=1 1-2: 0 0", None),
        ("CPU:1 [LOST 12 EVENTS]", None),
        ("", None),
    ],
)
def test_line_conversion(line, expected):
    assert tracefs_line_to_perf_script(line) == expected


def test_lost_events_are_counted():
    out = io.StringIO()
    stats = convert_trace_lines(
        [GUEST_LINE, "CPU:1 [LOST 12 EVENTS]", "garbage", "", GUEST_LINE.replace("41.", "42.")],
        out,
    )
    assert stats.nr_events == 2 and stats.nr_lost_events == 12 and stats.nr_skipped_lines == 1
    assert (stats.first_timestamp, stats.last_timestamp) == ("41.751439", "42.751439")
    assert parse_lost_events("CPU:0 [LOST 3 EVENTS]") == 3
    assert len(out.getvalue().splitlines()) == 2


def test_find_tracefs_and_tracepoints(tmp_path):
    kernel = FakeKernel(tmp_path)
    assert find_tracefs(kernel.fs) == TRACEFS
    assert damon_tracepoints(kernel.fs, TRACEFS) == ("damon_aggregated", "damos_before_apply")
    assert find_tracefs(FakeKernel(tmp_path / "x", tracefs=False).fs) is None


def test_instance_life_cycle(tmp_path):
    kernel = FakeKernel(tmp_path)
    instance = TraceInstance(kernel.fs, TRACEFS, buffer_size_kb=4096)
    with instance:
        path = kernel.instance()
        assert kernel.read(f"{path}/trace_clock").split().count("[mono]") == 1
        assert kernel.read(f"{path}/events/damon/damon_aggregated/enable") == "1"
        assert kernel.read(f"{path}/events/damon/damos_before_apply/enable") == "0"
        assert kernel.read(f"{path}/buffer_size_kb") == "4096"
        # Only the instance: the top-level buffer and events are untouched.
        assert kernel.read(f"{TRACEFS}/events/damon/damon_aggregated/enable") == "0"
        assert "[local]" in kernel.read(f"{TRACEFS}/trace_clock")
    assert not kernel.host(kernel.instance()).exists()


def test_stale_instance_is_replaced_and_busy_one_refused(tmp_path, caplog):
    kernel = FakeKernel(tmp_path)
    kernel.fs.mkdir(kernel.instance())
    with TraceInstance(kernel.fs, TRACEFS):
        assert "removing stale tracefs instance" in caplog.text
    kernel.fs.mkdir(kernel.instance())
    kernel.fs.rmtree_prefixes = ()  # rmdir of a non-empty directory fails like a busy instance
    with pytest.raises(DamonBusyError, match=r"already exists and cannot be removed"):
        TraceInstance(kernel.fs, TRACEFS).create()


def test_missing_tracepoint_is_unsupported(tmp_path):
    kernel = FakeKernel(tmp_path)
    with pytest.raises(DamonUnsupportedError, match=r"damon:damon_nonexistent not available"):
        TraceInstance(kernel.fs, TRACEFS, events=("damon_nonexistent",)).create()
    assert not kernel.host(kernel.instance()).exists()


def synthetic_trace(nr_snapshots: int, start_s: float = 41.0) -> tuple[list[str], int]:
    """Two regions per snapshot, 0.1 s apart; the first 16 MiB hot.  Returns lines and hot bytes."""
    hot = (140398567211008, 140398567211008 + (16 << 20))
    cold = (hot[1], hot[1] + (100 << 20))
    lines = []
    for n in range(nr_snapshots):
        stamp = f"{start_s + 0.1 * n:.6f}"
        for (start, end), accesses in ((hot, 12), (cold, 0)):
            lines.append(
                f"kdamond.0-516 [001] ..... {stamp}: damon_aggregated: target_id=0 "
                f"nr_regions=2 {start}-{end}: {accesses} {n}"
            )
    return lines, hot[1] - hot[0]


def test_recorder_streams_the_instance_pipe(tmp_path):
    kernel = FakeKernel(tmp_path / "machine")
    out = tmp_path / "record.perf_script"
    lines, _ = synthetic_trace(30)
    with TraceInstance(kernel.fs, TRACEFS) as instance:
        recorder = TraceRecorder(kernel.fs, instance, out, poll_s=0.01)
        with recorder:
            kernel.emit_trace(lines[:20])
            time.sleep(0.05)
            assert not out.exists()  # published only when complete
            kernel.emit_trace([*lines[20:], "CPU:0 [LOST 5 EVENTS]"])
        stats = recorder.stats
    written = out.read_text().splitlines()
    assert len(written) == 60 == stats.nr_events
    assert stats.nr_lost_events == 5
    assert written[0] == tracefs_line_to_perf_script(lines[0])
    assert not out.with_name(out.name + ".partial").exists()


def test_recorder_handles_a_slow_writer(tmp_path):
    kernel = FakeKernel(tmp_path / "machine")
    out = tmp_path / "rec"
    lines, _ = synthetic_trace(10)
    with (
        TraceInstance(kernel.fs, TRACEFS) as instance,
        TraceRecorder(kernel.fs, instance, out, poll_s=0.005),
    ):

        def writer() -> None:
            for line in lines:
                kernel.emit_trace([line])
                time.sleep(0.002)

        thread = threading.Thread(target=writer)
        thread.start()
        thread.join()
    assert len(out.read_text().splitlines()) == 20


def damo_command() -> str | None:
    return shutil.which("damo", path=str(Path(sys.executable).parent))


@pytest.mark.skipif(damo_command() is None, reason="damo (test extra) is not installed")
@pytest.mark.skipif(shutil.which("file") is None, reason="damo needs the 'file' command")
def test_damo_reads_our_record(tmp_path):
    lines, hot_bytes = synthetic_trace(40)
    out = tmp_path / "record.perf_script"
    with out.open("w") as handle:
        stats = convert_trace_lines(lines, handle)
    assert stats.nr_events == 80
    proc = subprocess.run(
        [
            damo_command(),
            "report",
            "wss",
            "-i",
            str(out),
            "--raw_number",
            "--range",
            "0",
            "101",
            "50",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    rows = [line.split() for line in proc.stdout.splitlines() if not line.startswith("#")]
    values = {int(r[0]): int(r[1]) for r in rows if r and r[0].isdigit()}
    # Every snapshot's working set is the hot region.
    assert values == {0: hot_bytes, 50: hot_bytes, 100: hot_bytes}, proc.stdout


def test_record_lines_from_any_stream(tmp_path):
    lines, _ = synthetic_trace(3)
    out = tmp_path / "sub" / "rec"
    stats = record_lines(iter([*lines, "CPU:0 [LOST 1 EVENTS]"]), out)
    assert stats.nr_events == 6 and stats.nr_lost_events == 1
    assert len(out.read_text().splitlines()) == 6
    assert not (tmp_path / "sub" / "rec.partial").exists()
