"""report accuracy: DAMON's per-phase view against the generator's ground truth."""

from __future__ import annotations

import json

import pytest
from record_samples import AGG_NS, MiB, Sample, Snap, perf_script

from damon_eval.cli import main
from damon_eval.errors import ConfigError
from damon_eval.records.accuracy import accuracy
from damon_eval.records.store import load_record
from damon_eval.workloads.truth import load_ground_truth

A = 0x7F0000000000
B = A + 164 * MiB  # 64 MiB unmapped between the two 100 MiB regions
T0 = 1000.0  # CLOCK_MONOTONIC seconds of the workload start


def zigzag(lag_s: float = 0.5, false_positive: bool = False):
    """masim's zigzag: 10 s on both regions, then 5 s phases on a, b, a, b.

    DAMON's simulated view follows each phase ``lag_s`` late (it still shows
    the previous pattern), as real monitoring does while regions adapt.
    """
    phases = [
        ("both", 0.0, 10.0, "ab"),
        ("a1", 10.0, 15.0, "a"),
        ("b1", 15.0, 20.0, "b"),
        ("a2", 20.0, 25.0, "a"),
        ("b2", 25.0, 30.0, "b"),
    ]

    def hot_at(t: float) -> str:
        seen = t - lag_s
        for _name, start, end, hot in phases:
            if start <= seen < end:
                return hot
        return phases[0][3]

    snaps = []
    n = int(30.0 / (AGG_NS / 1e9))
    for i in range(1, n + 1):
        t = i * AGG_NS / 1e9
        hot = hot_at(t - AGG_NS / 2e9)
        regions = []
        for name, base in (("a", A), ("b", B)):
            nr = 18 if name in hot else 0
            # DAMON splits each region in a few; sizes do not matter to the truth.
            regions += [
                (base, base + 30 * MiB, nr, 5),
                (base + 30 * MiB, base + 100 * MiB, nr, 5),
            ]
        if false_positive and hot == "a":
            start, end, _, age = regions[2]
            regions[2] = (start, end, 1, age)  # 30 MiB of b seen as accessed
        snaps.append(Snap(round((T0 + t) * 1e9), 4242, regions))
    truth = {
        "format": "damon-eval-ground-truth",
        "version": 1,
        "clock": "CLOCK_MONOTONIC",
        "pid": 4242,
        "regions": [
            {"name": "a", "start": A, "end": A + 100 * MiB},
            {"name": "b", "start": B, "end": B + 100 * MiB},
        ],
        "phases": [
            {
                "name": name,
                "start_s": T0 + start,
                "end_s": T0 + end,
                "accessed": [
                    {
                        "region": r,
                        "start": base,
                        "end": base + 100 * MiB,
                        "weight": 1,
                        "pattern": "sequential",
                        "rw": "wo",
                    }
                    for r, base in (("a", A), ("b", B))
                    if r in hot
                ],
            }
            for name, start, end, hot in phases
        ],
    }
    return Sample(snaps), truth


def _files(tmp_path, sample, truth):
    rec = tmp_path / "record.perf_script"
    rec.write_text(perf_script(sample))
    gt = tmp_path / "truth.json"
    gt.write_text(json.dumps(truth))
    return rec, gt


def test_zigzag_phases_are_found(tmp_path):
    rec, gt = _files(tmp_path, *zigzag())
    frame = accuracy(load_record(rec), load_ground_truth(gt))
    assert frame["phase"].tolist() == ["both", "a1", "b1", "a2", "b2"]
    assert frame.attrs["settle_s"] == pytest.approx(1.0)  # ten 100 ms intervals
    assert frame["true_bytes"].tolist() == [200 * MiB] + [100 * MiB] * 4
    # 5 s phases minus the 1 s settling window: 40 whole snapshots each.
    assert frame["snapshots"].tolist() == [90, 40, 40, 40, 40]
    assert frame["damon_wss_bytes"].tolist() == [200 * MiB] + [100 * MiB] * 4
    assert frame["wss_error"].tolist() == [0.0] * 5
    assert frame["precision"].tolist() == [1.0] * 5
    assert frame["recall"].tolist() == [1.0] * 5


def test_settling_window_matters_and_errors_are_measured(tmp_path):
    rec, gt = _files(tmp_path, *zigzag(lag_s=0.5, false_positive=True))
    record, truth = load_record(rec), load_ground_truth(gt)
    frame = accuracy(record, truth).set_index("phase")
    # In "a" phases DAMON also reports 30 MiB of b: precision 100/130, WSS +30 %.
    assert frame.loc["a1", "precision"] == pytest.approx(100 / 130)
    assert frame.loc["a1", "wss_error"] == pytest.approx(0.30)
    assert frame.loc["a1", "recall"] == 1.0
    assert frame.loc["b1", "precision"] == 1.0
    # Without settling, the 0.5 s lag puts the previous pattern in each phase.
    raw = accuracy(record, truth, settle_s=0).set_index("phase")
    assert raw.loc["b1", "snapshots"] == 50
    # 5 of 50 snapshots still show phase a (of b, only the false 30 MiB).
    assert raw.loc["b1", "recall"] == pytest.approx((45 + 5 * 0.3) / 50)
    assert raw.loc["b1", "precision"] < 1.0


def test_accessed_ranges_may_be_offsets_and_target_is_found_by_pid(tmp_path):
    sample, truth = zigzag()
    for phase in truth["phases"]:
        for acc in phase["accessed"]:
            base = A if acc["region"] == "a" else B
            acc["start"] -= base
            acc["end"] -= base
    rec, gt = _files(tmp_path, sample, truth)
    frame = accuracy(load_record(rec), load_ground_truth(gt))
    assert frame.attrs["target"] == "4242"
    assert frame["recall"].tolist() == [1.0] * 5


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.pop("phases"), "'phases' is a required property"),
        (lambda t: t.update(clock="CLOCK_REALTIME"), "clock"),
        (lambda t: t["phases"][1]["accessed"][0].update(region="c"), "unknown region 'c'"),
        (lambda t: t["phases"][1].update(end_s=0.5), "end_s <= start_s"),
        (lambda t: t["phases"][1]["accessed"][0].update(end=A + 400 * MiB), "lies outside"),
        (lambda t: t["regions"][0].update(start="0"), r"regions\[0\]\.start"),
    ],
)
def test_ground_truth_is_validated(tmp_path, edit, message):
    _sample, truth = zigzag()
    edit(truth)
    gt = tmp_path / "truth.json"
    gt.write_text(json.dumps(truth))
    with pytest.raises(ConfigError, match=message):
        load_ground_truth(gt)


def test_accuracy_cli_table_and_json(tmp_path, capsys):
    rec, gt = _files(tmp_path, *zigzag())
    assert main(["report", "accuracy", "-i", str(rec), "--truth", str(gt)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("# target 4242, acc_thres 1, settle 1.000 s")
    assert out[1].split() == [
        "phase",
        "snapshots",
        "true_bytes",
        "damon_wss",
        "wss_error",
        "precision",
        "recall",
    ]
    assert out[3].split() == [
        "a1",
        "40",
        str(100 * MiB),
        str(100 * MiB),
        "+0.00%",
        "1.000",
        "1.000",
    ]
    assert main(["report", "accuracy", "-i", str(rec), "--truth", str(gt), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["settings"]["target"] == "4242"
    assert [p["phase"] for p in doc["phases"]] == ["both", "a1", "b1", "a2", "b2"]


def test_several_targets_need_a_choice(tmp_path):
    sample, truth = zigzag()
    other = [Snap(s.time_ns + 1000, 7, s.regions) for s in sample.snaps]
    mixed = Sample([x for pair in zip(sample.snaps, other, strict=True) for x in pair])
    truth["pid"] = 99
    rec, gt = _files(tmp_path, mixed, truth)
    with pytest.raises(ConfigError, match=r"--target \(valid: 4242, 7\)"):
        accuracy(load_record(rec), load_ground_truth(gt))
    frame = accuracy(load_record(rec), load_ground_truth(gt), target="7")
    assert frame.attrs["target"] == "7"


def test_the_one_ground_truth_reader_resolves_offsets_and_reads_a_first_file():
    from damon_eval.workloads.truth import parse_ground_truth

    doc = {
        "format": "damon-eval-ground-truth", "version": 1, "clock": "CLOCK_MONOTONIC",
        "pid": 7, "regions": [{"name": "a", "start": 1 << 30, "end": (1 << 30) + 8192}],
        "phases": [],
    }  # fmt: skip
    assert parse_ground_truth(doc).phases == ()  # accgen writes this before a phase ends
    access = {"region": "a", "start": 4096, "end": 8192, "weight": 1, "pattern": "once", "rw": "wo"}
    doc["phases"] = [{"name": "p", "start_s": 1.0, "end_s": 2.0, "accessed": [access]}]
    (phase,) = parse_ground_truth(doc).phases
    assert [(a.start, a.end) for a in phase.accessed] == [((1 << 30) + 4096, (1 << 30) + 8192)]
    assert phase.working_set_bytes == 4096
