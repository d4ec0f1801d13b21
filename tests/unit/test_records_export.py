"""damon-eval record export: every output format reads back to the same record."""

from __future__ import annotations

import pytest
from record_samples import moving_hot, perf_script, two_targets

from damon_eval.cli import main
from damon_eval.records.formats import detect_format
from damon_eval.records.model import AGE_UNKNOWN
from damon_eval.records.store import load_record


def _rows(record, keep_age=True):
    out = []
    for chunk in record.chunks():
        for i in range(chunk.n_snapshots):
            lo, hi = chunk.offsets[i], chunk.offsets[i + 1]
            ages = chunk.age[lo:hi].tolist() if keep_age else [None] * (hi - lo)
            out.append(
                (
                    int(chunk.end_ns[i]),
                    int(chunk.start_ns[i]),
                    str(record.info.targets[chunk.target[i]]),
                    list(
                        zip(
                            chunk.start[lo:hi].tolist(),
                            chunk.end[lo:hi].tolist(),
                            chunk.nr_accesses[lo:hi].tolist(),
                            ages,
                            strict=True,
                        )
                    ),
                )
            )
    return out


@pytest.mark.parametrize(
    ("fmt", "detected"),
    [
        ("perf_script", "perf_script"),
        ("tracefs", "tracefs"),
        ("json", "json"),
        ("json_compressed", "json_compressed"),
        ("damon_data", "damon_data"),
        ("parquet", "parquet"),
    ],
)
def test_export_round_trip(tmp_path, fmt, detected):
    src = tmp_path / "in.perf"
    src.write_text(perf_script(two_targets()))
    out = tmp_path / f"out.{fmt}"
    assert main(["record", "export", "-i", str(src), "-o", str(out), "--format", fmt]) == 0
    assert detect_format(out) == detected
    original, again = load_record(src), load_record(out)
    keep_age = fmt != "damon_data"  # the seed's binary format has no age
    assert _rows(again, keep_age) == _rows(original, keep_age)
    if not keep_age:
        assert all((c.age == AGE_UNKNOWN).all() for c in again.chunks())


def test_export_without_age_and_of_before_apply(tmp_path):
    src = tmp_path / "in.perf"
    src.write_text(perf_script(moving_hot(5), age=False))
    out = tmp_path / "out.perf"
    assert (
        main(["record", "export", "-i", str(src), "-o", str(out), "--format", "perf_script"]) == 0
    )
    assert out.read_text().splitlines()[0].endswith(": 10")  # no age field invented
    assert _rows(load_record(out)) == _rows(load_record(src))


def test_export_refuses_truncated_input_unless_allowed(tmp_path, capsys):
    lines = perf_script(moving_hot(5)).splitlines(keepends=True)
    src = tmp_path / "in.perf"
    src.write_text("".join(lines[:-1]))
    out = tmp_path / "out.json"
    assert main(["record", "export", "-i", str(src), "-o", str(out), "--format", "json"]) == 2
    assert not out.exists()
    assert "truncated at line 17" in capsys.readouterr().err
    args = ["record", "export", "-i", str(src), "-o", str(out), "--format", "json"]
    assert main([*args, "--allow-partial"]) == 0
    assert load_record(out).n_snapshots == 4
