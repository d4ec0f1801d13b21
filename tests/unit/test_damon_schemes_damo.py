"""damo 3.4.3 (the test extra) as an oracle for the JSON scheme form.

damo imports its modules as top-level names, so it runs in a subprocess with
its package directory on ``sys.path``.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from damon_eval.damon.model import MonitoringAttrs
from damon_eval.damon.scheme_damo import format_damo_json, parse_schemes_json
from damon_eval.damon.schemes import parse_schemes

DAMO_SPEC = importlib.util.find_spec("damo")
pytestmark = pytest.mark.skipif(
    DAMO_SPEC is None, reason="damo is not installed (pip install -e '.[test]')"
)


def damo_dir() -> Path:
    assert DAMO_SPEC is not None and DAMO_SPEC.origin is not None
    return Path(DAMO_SPEC.origin).parent


def damo_raw_patterns(schemes_json: list[dict], sample_us: int, aggr_us: int) -> list[dict]:
    """What damo makes of our JSON: raw samples and aggregation intervals."""
    program = textwrap.dedent(
        f"""
        import json, sys
        sys.path.insert(0, {str(damo_dir())!r})
        import _damon
        schemes = json.loads(sys.stdin.read())
        intervals = _damon.DamonIntervals({sample_us}, {aggr_us}, 1000000)
        out = []
        for kv in schemes:
            scheme = _damon.Damos.from_kvpairs(kv)
            pattern = scheme.access_pattern.converted_for_units(
                _damon.unit_samples, _damon.unit_aggr_intervals, intervals)
            out.append({{
                "sz": [int(x) for x in pattern.sz_bytes],
                "nr_accesses": [int(x.samples) for x in pattern.nr_acc_min_max],
                "age": [int(x.aggr_intervals) for x in pattern.age_min_max],
                "action": scheme.action,
                "quotas": [scheme.quotas.time_ms, scheme.quotas.sz_bytes,
                           scheme.quotas.reset_interval_ms, scheme.quotas.weight_sz_permil,
                           scheme.quotas.weight_nr_accesses_permil,
                           scheme.quotas.weight_age_permil],
                "watermarks": [scheme.watermarks.metric, scheme.watermarks.interval_us,
                               scheme.watermarks.high_permil, scheme.watermarks.mid_permil,
                               scheme.watermarks.low_permil],
                "filters": [[f.filter_type, f.matching, f.allow] for f in scheme.filters],
            }})
        print(json.dumps(out))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", program],
        input=json.dumps(schemes_json),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout)


def saturate(values: list[int], limit: int) -> list[int]:
    """damo turns 'max' into huge numbers; any value >= the real limit means the same."""
    return [min(v, limit) for v in values]


@pytest.mark.parametrize(
    "text",
    [
        "4K null null 5 7s null pageout",
        "null null 5 null null null hugepage\n2M null null null 13s null nohugepage",
        "4K max min min 5s max pageout",
        "1.5M 2G 0.5 12.5 150ms 1h cold",
    ],
)
@pytest.mark.parametrize(("sample_us", "aggr_us"), [(5000, 100000), (1000, 20000), (3000, 100000)])
def test_damo_reads_our_json_as_we_resolve_it(text, sample_us, aggr_us):
    specs = parse_schemes(text)
    attrs = MonitoringAttrs(sample_us=sample_us, aggr_us=aggr_us)
    theirs = damo_raw_patterns([format_damo_json(s) for s in specs], sample_us, aggr_us)
    for spec, damo in zip(specs, theirs, strict=True):
        ours = spec.to_raw(attrs).access_pattern
        assert damo["action"] == spec.action
        assert damo["sz"] == [ours.sz_min, ours.sz_max]
        max_nr = attrs.max_nr_accesses
        assert saturate(damo["nr_accesses"], max_nr) == [ours.nr_accesses_min, ours.nr_accesses_max]
        assert saturate(damo["age"], 2**32 - 1) == [ours.age_min, ours.age_max]


def test_damo_reads_quotas_watermarks_and_filters_of_our_json():
    (spec,) = parse_schemes(
        json.dumps(
            [
                {
                    "action": "pageout",
                    "access_pattern": {
                        "sz_bytes": {"min": "4 KiB", "max": "max"},
                        "nr_accesses": {"min": "0 %", "max": "5 %"},
                        "age": {"min": "7 s", "max": "max"},
                    },
                    "quotas": {
                        "time_ms": "100 ms",
                        "sz_bytes": "1 GiB",
                        "reset_interval_ms": "1 s",
                        "weights": {"sz_permil": 1, "nr_accesses_permil": 3, "age_permil": 7},
                    },
                    "watermarks": {
                        "metric": "free_mem_rate",
                        "interval_us": "5 s",
                        "high_permil": "50 %",
                        "mid_permil": 400,
                        "low_permil": "20 %",
                    },
                    "filters": [{"filter_type": "anon", "matching": True, "allow": False}],
                }
            ]
        )
    )
    (damo,) = damo_raw_patterns([format_damo_json(spec)], 5000, 100000)
    assert damo["quotas"] == [100, 1 << 30, 1000, 1, 3, 7]
    assert damo["watermarks"] == ["free_mem_rate", 5000000, 500, 400, 200]
    assert damo["filters"] == [["anon", True, False]]


def test_we_read_damos_own_json_output(tmp_path):
    damo = shutil.which("damo", path=str(Path(sys.executable).parent))
    if damo is None:
        pytest.skip("the damo command is not in the virtual environment's bin directory")
    proc = subprocess.run(
        [
            damo,
            "args",
            "damon",
            "--target_pid",
            "1",
            "--damos_action",
            "pageout",
            "--damos_access_rate",
            "0%",
            "5%",
            "--damos_age",
            "7s",
            "max",
            "--damos_sz_region",
            "4K",
            "max",
            "--damos_quotas",
            "100ms",
            "1G",
            "1s",
            "0",
            "3",
            "7",
            "--damos_wmarks",
            "free_mem_rate",
            "5s",
            "500",
            "400",
            "200",
            "--damos_filter",
            "reject",
            "anon",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
    )
    (spec,) = parse_schemes_json(proc.stdout, "damo-output")
    pattern = spec.to_raw(MonitoringAttrs()).access_pattern
    assert (pattern.sz_min, pattern.nr_accesses_min, pattern.nr_accesses_max, pattern.age_min) == (
        4096,
        0,
        1,
        70,
    )
    assert spec.quotas.ms == 100 and spec.quotas.bytes == 1 << 30
    assert spec.quotas.reset_interval_ms == 1000
    assert (spec.quotas.weight_nr_accesses_permil, spec.quotas.weight_age_permil) == (3, 7)
    assert (spec.watermarks.metric, spec.watermarks.interval_us) == ("free_mem_rate", 5000000)
    assert (spec.watermarks.high, spec.watermarks.mid, spec.watermarks.low) == (500, 400, 200)
    assert [(f.type, f.matching, f.allow) for f in spec.filters] == [("anon", True, False)]
