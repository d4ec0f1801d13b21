"""accgen, compiled and run on this host: config parsing, ground truth, timing, RSS."""

from __future__ import annotations

import itertools
import re
import subprocess
import time
from pathlib import Path

import pytest
from agent_helpers import finish, need_compiler, start_agent, wait_until

from damon_eval.agent.build import build_agent_locally
from damon_eval.measure.samples import load_agent_output
from damon_eval.workloads.synthetic import (
    ACCGEN_SOURCE_PATH,
    SYNTHETIC_CONFIGS,
    accgen_compile_command,
    synthetic_config_path,
)
from damon_eval.workloads.truth import GroundTruthError, load_ground_truth, parse_ground_truth

MiB = 1 << 20
PHASE_LINE = re.compile(r"^(?P<name>.+): (?P<rate>\d+) accesses/msec, (?P<ms>\d+) msecs run$")


@pytest.fixture(scope="module")
def accgen(tmp_path_factory) -> Path:
    need_compiler()
    output = tmp_path_factory.mktemp("accgen") / "accgen"
    command = accgen_compile_command(output, ACCGEN_SOURCE_PATH)
    proc = subprocess.run([*command, "-Werror"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return output


def _run(accgen: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([accgen, *args], capture_output=True, text=True, timeout=timeout)


MASIM_STYLE = f"""\
# regions: name, size, init data file (masim's format)
a, {32 * MiB}, none
b, {16 * MiB}
zero, 8192, /dev/zero

# phases
touch a
once
a, 0, 4096, 1

both
300
# region, random, stride, weight, mode
a, 1, 64, 3, ro
b, 0, 4096, 1, rw
zero, 0, 64, 0

idle
200
"""


def test_ground_truth_of_a_masim_style_config(accgen, tmp_path):
    config = tmp_path / "t.cfg"
    config.write_text(MASIM_STYLE)
    truth_path = tmp_path / "truth.json"
    started = time.monotonic()
    proc = _run(accgen, "--truth", str(truth_path), str(config))
    finished = time.monotonic()
    assert proc.returncode == 0, proc.stderr
    truth = load_ground_truth(truth_path)
    assert truth.clock == "CLOCK_MONOTONIC" and truth.pid > 0
    regions = {r.name: r for r in truth.regions}
    assert {n: r.size for n, r in regions.items()} == {"a": 32 * MiB, "b": 16 * MiB, "zero": 8192}
    # private anonymous mappings aligned for THP, not overlapping
    assert all(r.start % (2 * MiB) == 0 for r in truth.regions)
    spans = sorted((r.start, r.end) for r in truth.regions)
    assert all(end <= next_start for (_, end), (next_start, _) in itertools.pairwise(spans))
    names = [p.name for p in truth.phases]
    assert names == ["touch a", "both", "idle"]
    touch, both, idle = truth.phases
    # the phases use the same clock as this process's time.monotonic()
    assert started <= touch.start_s < touch.end_s <= both.start_s < both.end_s <= idle.start_s
    assert idle.end_s <= finished
    # a phase ends after the batch that crosses its end (slack for a loaded machine)
    assert 0.3 <= both.end_s - both.start_s < 0.45
    assert 0.2 <= idle.end_s - idle.start_s < 0.3
    # one pass touches each page of a exactly once
    assert touch.nr_accesses == 32 * MiB // 4096
    assert [(a.region, a.pattern, a.rw) for a in touch.accessed] == [("a", "once", "wo")]
    # weight 0 is not accessed, so not listed
    assert [(a.region, a.weight, a.pattern, a.rw, a.stride) for a in both.accessed] == [
        ("a", 3, "random", "ro", 64),
        ("b", 1, "sequential", "rw", 4096),
    ]
    assert both.working_set_bytes == 48 * MiB
    assert idle.accessed == () and idle.nr_accesses == 0
    assert truth.phase_at((both.start_s + both.end_s) / 2) == both
    # one masim-like throughput line per phase
    lines = proc.stdout.splitlines()
    assert [PHASE_LINE.match(line)["name"] for line in lines] == names
    assert 300 <= int(PHASE_LINE.match(lines[1])["ms"]) < 450
    assert int(PHASE_LINE.match(lines[1])["rate"]) > 0


def test_scale_and_repeat(accgen, tmp_path):
    config = tmp_path / "t.cfg"
    config.write_text(f"r, {MiB}\n\np1\n400\nr, 1, 64, 1\n\np2\n200\nr, 0, 64, 1\n")
    truth_path = tmp_path / "truth.json"
    proc = _run(accgen, "--scale", "0.5", "--repeat", "2", "--truth", str(truth_path), str(config))
    assert proc.returncode == 0, proc.stderr
    truth = load_ground_truth(truth_path)
    assert [p.name for p in truth.phases] == ["p1", "p2", "p1", "p2"]
    durations = [p.end_s - p.start_s for p in truth.phases]
    # Each phase runs at least its scaled time; the truth prints microseconds, so
    # its rounding may take up to 1 us off.  No upper bound: a loaded host may
    # preempt the generator for any time (speed belongs to benchmarks).
    for duration, expected in zip(durations, [0.2, 0.1, 0.2, 0.1], strict=True):
        assert duration >= expected - 1e-6
    for before, after in zip(truth.phases, truth.phases[1:], strict=False):
        assert before.end_s <= after.start_s
    assert truth.scale == 0.5


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"a, {MiB}\n\np\n100\nb, 0, 64, 1\n", "no region named 'b'"),
        (f"a, {MiB}\n\np\n100\na, 0, 64, 1, wr\n", "bad access mode 'wr': valid are ro, wo, rw"),
        (f"a, {MiB}\n\np\nsoon\na, 0, 64, 1\n", "bad phase duration \\(ms\\) 'soon'"),
        (f"a, {MiB}\n", "no phases"),
        ("a, 0\n\np\n100\n", "region 'a' has size 0"),
        (f"a, {MiB}\na, {MiB}\n\np\n100\n", "region 'a' is defined twice"),
    ],
)
def test_config_errors_name_the_bad_value(accgen, tmp_path, text, message):
    config = tmp_path / "bad.cfg"
    config.write_text(text)
    proc = _run(accgen, str(config))
    assert proc.returncode == 2
    assert re.search(message, proc.stderr), proc.stderr
    assert f"{config}:" in proc.stderr or "no phases" in message


@pytest.mark.parametrize("name", sorted(SYNTHETIC_CONFIGS))
def test_shipped_configs_parse(accgen, name):
    proc = _run(accgen, "--dry-run", str(synthetic_config_path(name)))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("phase ") >= 3


def test_shipped_configs_match_their_descriptions(accgen):
    def plan(name: str) -> str:
        return _run(accgen, "--dry-run", str(synthetic_config_path(name))).stdout

    zigzag = plan("zigzag")
    assert zigzag.count("bytes") == 2 and "region a: 104857600 bytes" in zigzag
    assert zigzag.count(": 5000 ms") == 12 and "initial phase: 10000 ms" in zigzag
    stairs = plan("stairs")
    assert stairs.count(": 10485760 bytes") == 10 and stairs.count(": 5000 ms") == 10
    hotcold = plan("hotcold")
    assert "region hot: 33554432 bytes" in hotcold and "region cold: 268435456 bytes" in hotcold
    assert "phase touch all: once" in hotcold


def test_rss_grows_as_regions_are_touched(accgen, tmp_path):
    """Under de-agent: RSS follows the phases of the ground truth."""
    agent = build_agent_locally(tmp_path / "agent-build")
    config = tmp_path / "grow.cfg"
    config.write_text(
        f"a, {32 * MiB}\nb, {16 * MiB}\n\ntouch a\nonce\na, 0, 4096, 1\n\n"
        "wait 1\n500\n\ntouch b\nonce\nb, 0, 4096, 1\n\nwait 2\n500\n"
    )
    out = tmp_path / "run"
    truth_path = tmp_path / "truth.json"
    proc = start_agent(
        agent,
        [
            *("run", "--out", str(out), "--interval-ms", "50", "--hold", "none", "--"),
            *(str(accgen), "--truth", str(truth_path), str(config)),
        ],
    )
    code, _, err = finish(proc)
    assert code == 0, err
    result = load_agent_output(out)
    truth = load_ground_truth(truth_path)
    release = result.status.release_mono_s
    phases = {p.name: p for p in truth.phases}

    def rss_during(name: str) -> list[int]:
        phase = phases[name]
        return [
            s.rss_tree_kib
            for s in result.samples.samples
            if phase.start_s + 0.05 < release + s.t_s < phase.end_s - 0.02
        ]

    wait1, wait2 = rss_during("wait 1"), rss_during("wait 2")
    assert wait1 and wait2
    assert all(32 * 1024 <= kib < 40 * 1024 for kib in wait1), wait1
    assert all(48 * 1024 <= kib < 56 * 1024 for kib in wait2), wait2


def test_hugepage_advice_gives_transparent_huge_pages(accgen, tmp_path):
    enabled = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    if not enabled.exists() or "[never]" in enabled.read_text():
        pytest.skip("transparent huge pages are disabled on this host")
    config = tmp_path / "thp.cfg"
    config.write_text(f"r, {16 * MiB}\n\ntouch\nonce\nr, 0, 4096, 1\n\nhold\n1500\n")
    proc = subprocess.Popen([accgen, "--hugepage", "--quiet", str(config)])
    try:
        time.sleep(0.8)
        rollup = Path(f"/proc/{proc.pid}/smaps_rollup").read_text()
        anon_huge_kib = int(re.search(r"AnonHugePages:\s+(\d+)", rollup).group(1))
    finally:
        proc.wait(timeout=10)
    # not every fault gets a huge page on a busy host, but most of 16 MiB should
    assert anon_huge_kib >= 8 * 1024


def test_truth_is_written_atomically_after_each_phase(accgen, tmp_path):
    config = tmp_path / "slow.cfg"
    config.write_text(f"r, {MiB}\n\nfirst\n100\nr, 0, 64, 1\n\nsecond\n1000\n")
    truth_path = tmp_path / "truth.json"
    proc = subprocess.Popen([accgen, "--quiet", "--truth", str(truth_path), str(config)])
    try:
        wait_until(
            lambda: truth_path.exists() and len(load_ground_truth(truth_path).phases) == 1,
            5,
            "first phase in the truth",
        )
        assert load_ground_truth(truth_path).pid == proc.pid
    finally:
        proc.wait(timeout=10)
    assert len(load_ground_truth(truth_path).phases) == 2


def test_ground_truth_format_is_checked(tmp_path):
    with pytest.raises(GroundTruthError, match="not a damon-eval-ground-truth version 1"):
        parse_ground_truth({"format": "masim", "version": 1})
    with pytest.raises(GroundTruthError, match="'clock' is a required property"):
        parse_ground_truth({"format": "damon-eval-ground-truth", "version": 1, "pid": 1})
    bad = tmp_path / "t.json"
    bad.write_text("{")
    with pytest.raises(GroundTruthError, match="not JSON"):
        load_ground_truth(bad)
