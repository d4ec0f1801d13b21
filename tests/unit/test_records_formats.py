"""Every input format is read to the same snapshots; detection; the vectorised parser."""

from __future__ import annotations

import numpy as np
import pytest
from record_samples import AGG_NS, before_apply, moving_hot, two_targets, write_all_formats

from damon_eval.errors import RecordFormatError
from damon_eval.records import text_fast, textparse
from damon_eval.records.formats import detect_format
from damon_eval.records.model import AGE_UNKNOWN
from damon_eval.records.store import load_record


def _snapshots(record):
    """[(end_ns, target_id, [(start, end, nr, age)])] in time order."""
    out = []
    for chunk in record.chunks():
        for i in range(chunk.n_snapshots):
            lo, hi = chunk.offsets[i], chunk.offsets[i + 1]
            regions = list(
                zip(
                    chunk.start[lo:hi].tolist(),
                    chunk.end[lo:hi].tolist(),
                    chunk.nr_accesses[lo:hi].tolist(),
                    chunk.age[lo:hi].tolist(),
                    strict=True,
                )
            )
            out.append(
                (
                    int(chunk.end_ns[i]),
                    int(chunk.start_ns[i]),
                    record.info.targets[chunk.target[i]].target_id,
                    regions,
                )
            )
    return out


EXPECTED_FORMAT = {
    "perf_script": "perf_script",
    "perf_script_no_age": "perf_script",
    "tracefs": "tracefs",
    "tracefs_no_flags": "tracefs",
    "tracefs_padded": "tracefs",
    "json": "json",
    "json_compressed": "json_compressed",
    "damon_data_v2": "damon_data",
    "damon_data_v1": "damon_data",
    "damon_data_v0": "damon_data",
}


@pytest.mark.parametrize("sample_factory", [moving_hot, two_targets])
def test_every_format_reads_the_same_snapshots(tmp_path, sample_factory):
    sample = sample_factory()
    paths = write_all_formats(sample, tmp_path)
    for name, path in paths.items():
        assert detect_format(path) == EXPECTED_FORMAT[name], name
        record = load_record(path)
        got = _snapshots(record)
        assert len(got) == len(sample.snaps), name
        no_age = name in ("perf_script_no_age",) or name.startswith("damon_data")
        for (end_ns, _start_ns, target, regions), snap in zip(got, sample.snaps, strict=True):
            assert end_ns == snap.time_ns, name
            assert target == snap.target, name
            want = [
                (s, e, nr, int(AGE_UNKNOWN) if no_age else age) for s, e, nr, age in snap.regions
            ]
            assert regions == want, name
        # Start of every snapshot: the previous one of the same target; the first
        # one's is end - mean interval (damo's rule), here exactly 100 ms.
        for end_ns, start_ns, _target, _ in got:
            assert start_ns == end_ns - AGG_NS, name
        assert record.info.target_label == ("pid" if name.startswith("damon_data") else "target_id")


def test_parquet_round_trip(tmp_path):
    from damon_eval.records.writers import export_record

    sample = two_targets()
    src = tmp_path / "in.perf"
    src.write_text(__import__("record_samples").perf_script(sample))
    record = load_record(src)
    out = tmp_path / "out.parquet"
    export_record(record, out, "parquet")
    assert detect_format(out) == "parquet"
    again = load_record(out)
    assert _snapshots(again) == _snapshots(record)
    assert again.info.targets == record.info.targets


def test_damos_before_apply_snapshots_are_runs_of_ascending_regions(tmp_path):
    sample = moving_hot(4)
    path = tmp_path / "apply.perf"
    path.write_text(before_apply(sample, scheme=1))
    record = load_record(path)
    assert record.info.event == "damos_before_apply"
    assert str(record.info.targets[0]) == "0/1/0"
    got = _snapshots(record)
    # nr_regions (target total) is 6 but each apply round tried 4 regions.
    assert [len(r) for *_, r in got] == [4, 4, 4, 4]
    assert [e for e, *_ in got] == [s.time_ns for s in sample.snaps]


def test_interleaved_targets_and_lost_events_are_handled(tmp_path):
    sample = two_targets()
    lines = __import__("record_samples").perf_script(sample).splitlines()
    # Interleave the two targets' events of each aggregation, then drop one event
    # of the third snapshot of target 0 (perf lost it).
    mixed = []
    i = 0
    while i < len(lines):
        a = [ln for ln in lines[i : i + 5] if "target_id=0" in ln]
        b = [ln for ln in lines[i : i + 5] if "target_id=1" in ln]
        for k in range(max(len(a), len(b))):
            mixed += a[k : k + 1] + b[k : k + 1]
        i += 5
    lost = next(k for k, ln in enumerate(mixed) if "target_id=0" in ln and "41.951439" in ln)
    del mixed[lost]
    path = tmp_path / "mixed.perf"
    path.write_text("\n".join(mixed) + "\n")
    record = load_record(path)
    got = _snapshots(record)
    assert len([g for g in got if g[2] == 0]) == 5  # one dropped
    assert len([g for g in got if g[2] == 1]) == 6
    assert any("2 regions" in w or "1 of 2 regions" in w for w in record.info.warnings)
    want_b = [s for s in sample.snaps if s.target == 1]
    got_b = [g for g in got if g[2] == 1]
    assert [g[3] for g in got_b] == [[(*r[:3], r[3]) for r in s.regions] for s in want_b]


def test_fast_and_exact_parsers_agree(monkeypatch):
    text = (
        __import__("record_samples").perf_script(two_targets())
        + __import__("record_samples").perf_script(moving_hot(3), age=False)
        + "random other line: with colons: 12 34\n"
        + "kdamond.0 516 [001] 99.000001: damon:damon_monitor_intervals_tune: sample_us=5000\n"
    ).encode()
    fast = textparse.parse_block(text, first_line_no=1, event="damon_aggregated", source="x")
    monkeypatch.setattr(text_fast, "parse_fast", lambda *a, **k: None)
    exact = textparse.parse_block(text, first_line_no=1, event="damon_aggregated", source="x")
    for name in ("line_no", "time_ns", "target_id", "nr_regions", "start", "end", "age"):
        assert np.array_equal(getattr(fast, name), getattr(exact, name)), name
    assert fast.size == exact.size == 12 + 18 + 12


def test_unusual_but_valid_lines_use_the_exact_parser():
    # Leading zeros and a trailing carriage return defeat the fast path's checks.
    text = (
        b"kdamond.0   516 [001]    41.000001: damon:damon_aggregated: "
        b"target_id=0 nr_regions=1 4096-8192: 007 1\r\n"
    )
    ev = textparse.parse_block(text, first_line_no=1, event="damon_aggregated", source="x")
    assert ev.nr_accesses.tolist() == [7]
    assert ev.time_ns.tolist() == [41_000_001_000]


def test_timestamp_precision_is_kept_exactly():
    text = (
        b"kdamond.0-516 [001] ..... 12345.123456789: damon_aggregated: "
        b"target_id=18446623435582458880 nr_regions=1 4096-8192: 3 1\n"
    )
    ev = textparse.parse_block(text, first_line_no=1, event="damon_aggregated", source="x")
    assert ev.time_ns.tolist() == [12345_123456789]
    assert ev.target_id.tolist() == [18446623435582458880]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (
            b"k 1 [0] 1.5: damon:damon_aggregated: target_id=0 nr_regions=1 40x96-8192: 3 1",
            "fields",
        ),
        (b"k 1 [0] 1.5: damon:damon_aggregated: target_id=0 nr_regions=1 4096 8192: 3 1", "<end>"),
        (b"k 1 [0] 1.5: damon:damon_aggregated: target=0 nr_regions=1 4096-8192: 3 1", "target_id"),
        (b"k 1 [0] 1.5: damon:damon_aggregated: target_id=0 nr_regions=1 8192-4096: 3 1", "above"),
        (
            b"k 1 [0] 1.5: damon:damon_aggregated: target_id=0 nr_regions=1 "
            b"4096-999999999999999999999: 3 1",
            "64 bits",
        ),
        (
            b"k 1 [0] 15: damon:damon_aggregated: target_id=0 nr_regions=1 4096-8192: 3 1",
            "timestamp",
        ),
    ],
)
def test_malformed_event_line_names_the_line(tmp_path, line, reason):
    good = b"k 1 [0] 1.4: damon:damon_aggregated: target_id=0 nr_regions=1 4096-8192: 3 1\n"
    path = tmp_path / "bad.perf"
    path.write_bytes(b"# header\n" + good + line + b"\n" + good)
    with pytest.raises(RecordFormatError) as err:
        load_record(path)
    message = str(err.value)
    assert "line 3" in message and str(path) in message
    assert reason in message


def test_detection_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    with pytest.raises(RecordFormatError, match="empty"):
        load_record(empty)
    text = tmp_path / "text"
    text.write_text("hello world\nno events here\n")
    with pytest.raises(RecordFormatError, match="damon_aggregated"):
        load_record(text)
    junk = tmp_path / "junk"
    junk.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(RecordFormatError, match="unknown format"):
        load_record(junk)
    with pytest.raises(RecordFormatError, match="no such file"):
        load_record(tmp_path / "missing")


def test_spilled_record_reads_like_an_in_memory_one(tmp_path):
    sample = moving_hot(40)
    path = tmp_path / "r.perf"
    path.write_text(__import__("record_samples").perf_script(sample))
    in_memory = load_record(path)
    spilled = load_record(path, memory_budget=0)
    assert spilled.spilled and not in_memory.spilled
    assert _snapshots(spilled) == _snapshots(in_memory)


@pytest.mark.parametrize(
    "render",
    [
        lambda s: __import__("record_samples").perf_script(s),
        lambda s: __import__("record_samples").perf_script(s, age=False),
        lambda s: __import__("record_samples").tracefs(s),
        lambda s: __import__("record_samples").tracefs(s, flags=False, pad=True),
        lambda s: __import__("record_samples").before_apply(s),
    ],
)
def test_common_forms_take_the_fast_path(monkeypatch, render):
    text = render(two_targets()).encode()
    event = "damos_before_apply" if b"damos_before_apply" in text else "damon_aggregated"
    results = []
    real = text_fast.parse_fast
    monkeypatch.setattr(
        text_fast, "parse_fast", lambda *a, **k: results.append(real(*a, **k)) or results[-1]
    )
    textparse.parse_block(text, first_line_no=1, event=event, source="x")
    assert results and results[0] is not None


def test_timestamp_forms_agree_between_parsers(monkeypatch):
    stamps = ["41.5", "0.000001", "1234567890.123456789", "7.100000", "99999.12"]
    text = "".join(
        f"kdamond.0 516 [001] {ts}: damon:damon_aggregated: target_id=0 nr_regions=1 "
        f"{4096 * (i + 1)}-{4096 * (i + 2)}: {i} 1\n"
        for i, ts in enumerate(stamps)
    ).encode()
    used = []
    real = text_fast.parse_fast
    monkeypatch.setattr(
        text_fast, "parse_fast", lambda *a, **k: used.append(real(*a, **k)) or used[-1]
    )
    fast = textparse.parse_block(text, first_line_no=1, event="damon_aggregated", source="x")
    assert used[0] is not None
    assert fast.time_ns.tolist() == [
        41_500_000_000,
        1_000,
        1234567890_123456789,
        7_100_000_000,
        99999_120_000_000,
    ]
    monkeypatch.setattr(text_fast, "parse_fast", lambda *a, **k: None)
    exact = textparse.parse_block(text, first_line_no=1, event="damon_aggregated", source="x")
    assert exact.time_ns.tolist() == fast.time_ns.tolist()


def test_package_exports_stay_functions_after_their_submodule_is_imported():
    import importlib

    import damon_eval.records as records

    for name in records.__all__:
        if importlib.util.find_spec(f"damon_eval.records.{name}") is not None:
            importlib.import_module(f"damon_eval.records.{name}")
        assert not isinstance(getattr(records, name), type(importlib)), name
