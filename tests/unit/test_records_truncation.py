"""Malformed and truncated files: errors name the file and the line or byte offset."""

from __future__ import annotations

import struct
import zlib

import pytest
from record_samples import damo_json, damon_data, moving_hot, perf_script

from damon_eval.cli import main
from damon_eval.errors import RecordFormatError
from damon_eval.records.store import load_record

SNAPSHOT_BYTES = 16 + 4 + 8 + 4 + 4 * 20  # one task, four regions, version 2


def test_text_cut_mid_line_fails_unless_partial_is_allowed(tmp_path):
    text = perf_script(moving_hot(25)).encode()
    lines = text.split(b"\n")
    cut = sum(len(line) + 1 for line in lines[:49]) + 30  # inside line 50
    path = tmp_path / "cut.perf"
    path.write_bytes(text[:cut])
    with pytest.raises(RecordFormatError) as err:
        load_record(path)
    message = str(err.value)
    assert str(path) in message
    assert "truncated at line 49" in message
    assert "12 complete snapshots" in message
    record = load_record(path, allow_partial=True)
    assert record.n_snapshots == 12
    assert any(
        "truncated at line 49" in w and "used 12 complete snapshots" in w
        for w in record.info.warnings
    )


def test_text_cut_between_lines_inside_a_snapshot(tmp_path):
    lines = perf_script(moving_hot(25)).splitlines(keepends=True)
    path = tmp_path / "cut.perf"
    path.write_text("".join(lines[:50]))  # snapshot 13 has 2 of its 4 events
    with pytest.raises(
        RecordFormatError, match=r"truncated at line 49 \(last snapshot incomplete\)"
    ):
        load_record(path)
    assert load_record(path, allow_partial=True).n_snapshots == 12


def test_binary_cut_names_the_byte_offset(tmp_path):
    data = damon_data(moving_hot(25))
    start_of_13th = 20 + 12 * SNAPSHOT_BYTES
    path = tmp_path / "damon.data"
    path.write_bytes(data[: start_of_13th + 50])
    with pytest.raises(RecordFormatError) as err:
        load_record(path)
    assert f"truncated at byte {start_of_13th}" in str(err.value)
    assert "12 complete snapshots" in str(err.value)
    record = load_record(path, allow_partial=True)
    assert record.n_snapshots == 12
    assert any(f"truncated at byte {start_of_13th}; used 12" in w for w in record.info.warnings)


def test_binary_malformed_fields_name_the_offset(tmp_path):
    data = bytearray(damon_data(moving_hot(5)))
    third = 20 + 2 * SNAPSHOT_BYTES
    data[third + 8 : third + 16] = struct.pack("<q", 2_000_000_000)  # nsec out of range
    path = tmp_path / "damon.data"
    path.write_bytes(bytes(data))
    with pytest.raises(RecordFormatError, match=f"byte {third}: implausible timestamp"):
        load_record(path)

    data = bytearray(damon_data(moving_hot(5)))
    region = 20 + SNAPSHOT_BYTES + 16 + 4 + 8 + 4 + 20  # second region of the second snapshot
    data[region : region + 8] = struct.pack("<Q", 2**60)  # start above end
    path.write_bytes(bytes(data))
    with pytest.raises(RecordFormatError, match=f"byte {region}: region start"):
        load_record(path)

    data = bytearray(damon_data(moving_hot(5)))
    data[16:20] = struct.pack("<i", 7)
    path.write_bytes(bytes(data))
    with pytest.raises(
        RecordFormatError, match=r"byte 16: unsupported damon\.data format version 7"
    ):
        load_record(path)


def test_json_truncated_or_corrupt(tmp_path):
    text = damo_json(moving_hot(5))
    path = tmp_path / "r.json"
    path.write_text(text[: len(text) // 2])
    with pytest.raises(RecordFormatError, match=r"r.json: line \d+ column \d+: invalid JSON"):
        load_record(path)
    path = tmp_path / "r.jz"
    path.write_bytes(zlib.compress(text.encode())[:200])
    with pytest.raises(RecordFormatError, match="zlib stream is corrupt or truncated"):
        load_record(path, format="json_compressed")
    path = tmp_path / "bad.json"
    path.write_text('[{"target_id": 0, "snapshots": [{"end_time": 5, "regions": [{"start": 1}]}]}]')
    with pytest.raises(RecordFormatError, match=r"\[0\]\.snapshots\[0\]\.regions\[0\]"):
        load_record(path)


def test_parquet_garbage(tmp_path):
    path = tmp_path / "r.parquet"
    path.write_bytes(b"PAR1" + b"\0" * 100)
    with pytest.raises(RecordFormatError, match="not a readable Parquet file"):
        load_record(path)


def test_cli_reports_truncation_on_one_line_and_allows_partial(tmp_path, capsys):
    lines = perf_script(moving_hot(25)).splitlines(keepends=True)
    path = tmp_path / "cut.perf"
    path.write_text("".join(lines[:50]))
    assert main(["report", "wss", "-i", str(path), "--exclude-samples", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "truncated at line 49" in err
    assert (
        main(["report", "wss", "-i", str(path), "--exclude-samples", "0", "--allow-partial"]) == 0
    )
    captured = capsys.readouterr()
    assert "warning: record" in captured.err and "used 12 complete snapshots" in captured.err
    assert captured.out.startswith("# <percentile> <wss>\n")


def test_tracefs_and_before_apply_truncation(tmp_path):
    from record_samples import before_apply, tracefs

    text = tracefs(moving_hot(6), flags=False)
    path = tmp_path / "trace.txt"
    path.write_text(text[:-10])  # the last line loses its end
    with pytest.raises(RecordFormatError, match=r"truncated at line 24 \(the last line"):
        load_record(path)
    assert load_record(path, allow_partial=True).n_snapshots == 5
    text = before_apply(moving_hot(3))
    path = tmp_path / "apply.txt"
    path.write_text(text[:-5])
    with pytest.raises(RecordFormatError, match="truncated at line"):
        load_record(path)
    # damos_before_apply rounds have no fixed size: the cut round is dropped whole.
    assert load_record(path, allow_partial=True).n_snapshots == 2
