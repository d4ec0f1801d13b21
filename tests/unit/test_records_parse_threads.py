"""Text records parsed on worker threads read exactly as when parsed in one thread."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from record_samples import moving_hot, perf_script, two_targets

from damon_eval.errors import ConfigError, RecordFormatError
from damon_eval.records import text_reader
from damon_eval.records.store import load_record


def _snapshot_arrays(record):
    chunks = list(record.chunks())
    return {
        name: np.concatenate([getattr(c, name) for c in chunks])
        for name in ("start", "end", "nr_accesses", "start_ns", "end_ns", "target")
    }


@pytest.fixture
def small_blocks(monkeypatch):
    # Blocks of a few lines, so that a small record spans many of them.
    monkeypatch.setattr(text_reader, "TEXT_BLOCK_BYTES", 700)


@pytest.mark.parametrize("sample", [moving_hot(n=60), two_targets()], ids=["moving", "two"])
def test_every_thread_count_reads_the_same_record(tmp_path, monkeypatch, small_blocks, sample):
    path = tmp_path / "r.perf"
    path.write_text(perf_script(sample))
    read = {}
    for threads in ("1", "2", "5"):
        monkeypatch.setenv(text_reader.PARSE_THREADS_ENV, threads)
        record = load_record(path)
        read[threads] = (_snapshot_arrays(record), record.n_snapshots)
    one, _ = read["1"]
    assert read["1"][1] == len(sample.snaps)
    for threads in ("2", "5"):
        arrays, n = read[threads]
        assert n == read["1"][1]
        for name, values in one.items():
            assert np.array_equal(values, arrays[name]), (threads, name)


def test_many_blocks_start_worker_threads(tmp_path, monkeypatch, small_blocks):
    path = tmp_path / "r.perf"
    path.write_text(perf_script(moving_hot(n=60)))
    monkeypatch.setenv(text_reader.PARSE_THREADS_ENV, "3")
    seen = set()
    parse = text_reader.parse_local

    def recording_parse(block, event):
        seen.add(threading.current_thread().name)
        return parse(block, event)

    monkeypatch.setattr(text_reader, "parse_local", recording_parse)
    load_record(path)
    assert threading.main_thread().name in seen  # the first block, inline
    assert any(name.startswith("damon-eval-parse") for name in seen)
    assert not any(t.name.startswith("damon-eval-parse") for t in threading.enumerate())


@pytest.mark.parametrize("threads", ["1", "4"])
def test_a_bad_line_in_a_later_block_is_named_by_its_file_line(
    tmp_path, monkeypatch, small_blocks, threads
):
    monkeypatch.setenv(text_reader.PARSE_THREADS_ENV, threads)
    lines = perf_script(moving_hot(n=60)).splitlines()
    bad_index = len(lines) - 7
    lines[bad_index] = lines[bad_index].replace("nr_regions=4", "nr_regions=x")
    path = tmp_path / "bad.perf"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(RecordFormatError, match=rf"line {bad_index + 1}: malformed"):
        load_record(path)


@pytest.mark.parametrize("value", ["0", "-1", "two", "", "65"])
def test_a_bad_thread_count_names_the_variable_and_the_valid_range(monkeypatch, value):
    monkeypatch.setenv(text_reader.PARSE_THREADS_ENV, value)
    with pytest.raises(ConfigError, match=rf"DAMON_EVAL_PARSE_THREADS='{value}'.*1 to 64"):
        text_reader.parse_threads()


def test_default_thread_count_follows_the_usable_cpus(monkeypatch):
    monkeypatch.delenv(text_reader.PARSE_THREADS_ENV, raising=False)
    monkeypatch.setattr(text_reader.os, "sched_getaffinity", lambda pid: {0, 1})
    assert text_reader.parse_threads() == 2
    monkeypatch.setattr(text_reader.os, "sched_getaffinity", lambda pid: set(range(32)))
    assert text_reader.parse_threads() == 4


def test_blocks_are_read_ahead_only_within_the_window(tmp_path, monkeypatch, small_blocks):
    path = tmp_path / "r.perf"
    path.write_text(perf_script(moving_hot(n=60)))
    monkeypatch.setenv(text_reader.PARSE_THREADS_ENV, "2")
    calls = []
    parse = text_reader.parse_local
    monkeypatch.setattr(text_reader, "parse_local", lambda b, e: calls.append(1) or parse(b, e))
    reader = text_reader.TextReader(path)
    with path.open("rb") as f:
        blocks = reader._parsed_blocks(f)
        next(blocks)
        assert len(calls) <= 3  # the window (2) plus the block just yielded
        rest = list(blocks)
    assert len(calls) == 1 + len(rest) > 5
