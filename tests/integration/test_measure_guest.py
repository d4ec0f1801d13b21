"""One measured run in each of the six configurations, in real guests, and failures marked.

``synthetic/hotcold`` at scale 0.15 (32 MiB hot all the time, 256 MiB written
once then idle for ~15 s) is small and short, yet enough for what each
configuration must show: prcl pages the idle part out, thp backs memory with
huge pages, ethp applies its hugepage action to the hot part, rec/prec record.
The six runs happen once per module (about 30-70 s each under TCG); each test
then asserts one property over their results.  Nothing asserts on wall time.
"""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path

import jsonschema
import pytest
from guest_helpers import CONFIGS, cli, itest_campaign, require_image, run_one, write_campaign

from damon_eval.paths import DATA_DIR

pytestmark = pytest.mark.guest
log = logging.getLogger(__name__)

HOTCOLD = "synthetic/hotcold"
HARNESS_RSS_LIMIT_KIB = 1024


@dataclass(frozen=True)
class MeasuredRun:
    config: str
    status: str
    run_dir: Path
    seconds: float

    @functools.cached_property
    def result(self) -> dict:
        return json.loads((self.run_dir / "result.json").read_text())

    @property
    def metrics(self) -> dict:
        return self.result["metrics"]


@pytest.fixture(scope="module")
def image():
    return require_image()


@pytest.fixture(scope="module")
def runs(image, tmp_path_factory) -> dict[str, MeasuredRun]:
    campaign = itest_campaign()
    base = tmp_path_factory.mktemp("measure")
    measured = {}
    for config in CONFIGS:
        run_dir = base / config
        outcome, seconds = run_one(campaign, HOTCOLD, config, run_dir)
        log.warning("run %s/%s: %s in %.1f s", HOTCOLD, config, outcome.status, seconds)
        measured[config] = MeasuredRun(config, outcome.status, run_dir, seconds)
    summary = {
        c: {"seconds": round(r.seconds, 1), **{k: r.metrics.get(k) for k in _SUMMARY_KEYS}}
        for c, r in measured.items()
        if r.status == "ok"
    }
    (base / "summary.json").write_text(json.dumps(summary, indent=1))
    log.warning("measured: %s", json.dumps(summary))
    return measured


_SUMMARY_KEYS = (
    "runtime",
    "rss.avg",
    "memused.avg",
    "anon_huge.avg",
    "pswpout",
    "damos.nr_applied",
    "damos.sz_applied",
    "harness_rss.max",
    "kdamond_cpu_util",
)


@functools.cache
def _schema() -> dict:
    return json.loads((DATA_DIR / "schemas" / "result.schema.json").read_text())


def _ok(runs: dict[str, MeasuredRun], config: str) -> MeasuredRun:
    run = runs[config]
    if run.status != "ok":
        failure = json.loads(next(run.run_dir.glob("attempt-*/failure.json")).read_text())
        pytest.fail(f"run {config} failed: {failure['failure']}")
    return run


@pytest.mark.parametrize("config", CONFIGS)
def test_result_validates_and_carries_provenance(runs, image, config):
    from damon_eval import provenance
    from damon_eval.analysis.runtable import load_result

    run = _ok(runs, config)
    result = run.result
    jsonschema.validate(result, _schema())
    load_result(run.run_dir / "result.json")  # the collector accepts it too
    assert result["status"] == "ok" and result["failure"] is None
    assert result["run"] == {
        "suite": "synthetic",
        "workload": "hotcold",
        "config": config,
        "repeat": 1,
        "attempt": 1,
    }
    assert result["metrics"]["runtime"] > 0 and result["samples"]["rows"]
    prov = result["provenance"]
    assert prov["guest"]["kernel_release"] == image.kernel_release
    assert prov["guest"]["image_key"] == image.key
    assert prov["guest"]["image_build_id"] == image.manifest()["build_id"]
    assert prov["guest"]["accel"] in ("kvm", "tcg")
    assert prov["harness_revision"] == provenance.git_revision()
    assert prov["workload"]["id"] == HOTCOLD and prov["workload"]["scale"] == 0.15
    assert prov["workload"]["version"].startswith("accgen+hotcold.cfg:")
    described = prov["config"]
    assert described["name"] == config
    thp = "always" if config == "thp" else "madvise"
    assert f"[{thp}]" in prov["system"]["thp_enabled"]
    if config in ("ethp", "prcl"):
        # Schemes are recorded in both forms: the text and the raw sysfs values.
        schemes = described["schemes"]
        assert schemes and all(s["text"] and s["raw"]["action"] for s in schemes)
        assert prov["damon"]["kdamond"]["contexts"][0]["schemes"] == [s["raw"] for s in schemes]
        raw = schemes[0]["raw"]["access_pattern"]
        if config == "prcl":  # 7 s at 100 ms aggregation; <=5 % of 20 samples
            assert (raw["age_min"], raw["nr_accesses_max"]) == (70, 1)
    if config == "orig" or config == "thp":
        assert prov["damon"] is None and result["record"] is None
    if config in ("rec", "prec"):
        assert result["record"]["file"] == "record.perf_script"


def test_harness_footprint_stays_under_1_mib(runs):
    for config in CONFIGS:
        metrics = _ok(runs, config).metrics
        assert 0 < metrics["harness_rss.max"] < HARNESS_RSS_LIMIT_KIB, (config, metrics)


def test_rec_record_shows_the_hot_region(runs):
    from damon_eval.records import accuracy, load_record, wss_distribution

    run = _ok(runs, "rec")
    record_path = run.run_dir / run.result["record"]["file"]
    record = load_record(record_path)
    assert record.n_snapshots == run.result["record"]["nr_snapshots"] > 20
    table = accuracy(record, run.run_dir / "truth.json").set_index("phase")
    hot_only = table.loc["hot only"]
    # 32 MiB accessed, 256 MiB idle: DAMON's accessed bytes are the hot region.
    assert hot_only["snapshots"] >= 10, table
    assert hot_only["precision"] >= 0.8 and hot_only["recall"] >= 0.8, table
    assert abs(hot_only["wss_error"]) <= 0.5, table
    # Most of the run is the hot-only phase: the median working set is the hot region.
    (dist,) = wss_distribution(record)
    truth = json.loads((run.run_dir / "truth.json").read_text())
    hot = next(r for r in truth["regions"] if r["name"] == "hot")
    assert 0.5 * hot["size"] <= dist.percentile(50) <= 2 * hot["size"], dist


def test_prec_records_physical_addresses(runs):
    from damon_eval.records import load_record

    run = _ok(runs, "prec")
    record = load_record(run.run_dir / run.result["record"]["file"])
    assert record.n_snapshots == run.result["record"]["nr_snapshots"] > 20
    assert run.result["provenance"]["damon"]["kdamond"]["contexts"][0]["operations"] == "paddr"
    # paddr regions lie in the guest's 2 GiB of RAM, not in a process's address space.
    top = max(int(chunk.end.max()) for chunk in record.chunks())
    assert top <= 4 << 30


def test_thp_backs_memory_with_huge_pages_and_orig_less(runs):
    thp, orig = _ok(runs, "thp").metrics, _ok(runs, "orig").metrics
    assert thp["anon_huge.avg"] > 0
    assert orig["anon_huge.avg"] < thp["anon_huge.avg"], (orig, thp)


def test_ethp_applies_its_hugepage_action(runs):
    run = _ok(runs, "ethp")
    metrics = run.metrics
    assert metrics["damos.nr_applied"] > 0 and metrics["damos.sz_applied"] > 0, metrics
    # Per scheme (samples.csv columns s<N>_*): scheme 0 is the hugepage action.
    columns = run.result["samples"]["columns"]
    last = run.result["samples"]["rows"][-1]
    assert last[columns.index("s0_nr_applied")] > 0, dict(zip(columns, last, strict=True))


def test_prcl_swaps_out_and_shrinks_rss(runs):
    prcl, orig = _ok(runs, "prcl").metrics, _ok(runs, "orig").metrics
    assert prcl["pswpout"] > 0 and prcl["damos.sz_applied"] > 0, prcl
    assert prcl["rss.avg"] < orig["rss.avg"], (prcl, orig)


# ------------------------------------------------------------------ failures


@pytest.fixture
def exiting_hotcold(monkeypatch):
    """synthetic/hotcold whose command exits 3: the registry entry is replaced for
    this test only, keeping the preparation (so the saved state is reused)."""
    from damon_eval.workloads import _registry
    from damon_eval.workloads.synthetic import SyntheticWorkload

    original = _registry()[HOTCOLD]

    class ExitingWorkload(SyntheticWorkload):
        __slots__ = ()

        def run_plan(self, context, params):
            plan = SyntheticWorkload.run_plan(self, context, params)
            return replace(plan, command=("/bin/sh", "-c", "echo boom-from-workload >&2; exit 3"))

    failing = ExitingWorkload(original.name, original.description, original.seconds_at_scale_1)
    monkeypatch.setitem(_registry(), HOTCOLD, failing)
    return failing


def test_noise_steps_auto_skip_in_a_guest_and_forced_ones_run(runs, image, tmp_path):
    auto = _ok(runs, "orig").result["provenance"]["noise"]
    boot_kind = _ok(runs, "orig").result["provenance"]["guest"]["boot_kind"]
    for step in ("drop_caches", "compact_memory"):
        assert auto[step]["setting"] == "auto" and auto[step]["applied"] is False
        assert auto[step]["reason"].startswith(f"auto: skipped after a {boot_kind}")

    forced = itest_campaign(noise={"drop_caches": True, "compact_memory": True})
    outcome, _ = run_one(forced, HOTCOLD, "orig", tmp_path / "forced")
    assert outcome.status == "ok"
    result = json.loads((tmp_path / "forced" / "result.json").read_text())
    jsonschema.validate(result, _schema())
    steps = result["provenance"]["noise"]
    assert steps["drop_caches"] == {
        "setting": "on",
        "applied": True,
        "where": "de-agent --drop-caches: sync, drop, before sample 0",
    }
    compact = steps["compact_memory"]
    assert compact["applied"] is True and compact["caches_dropped_first"] is True
    assert 0 < compact["free_huge_mib_before"] <= 2048
    assert 0 < compact["free_huge_mib_after"] <= 2048
    agent_logs = list((tmp_path / "forced").rglob("agent.log"))
    assert all("drop_caches failed" not in log.read_text() for log in agent_logs)


def _failure_json(run_dir: Path, attempt: int) -> dict:
    return json.loads((run_dir / f"attempt-{attempt}" / "failure.json").read_text())


def test_workload_exiting_non_zero_is_marked_failed(image, exiting_hotcold, tmp_path):
    campaign = itest_campaign()
    run_dir = tmp_path / "exit"
    first, _ = run_one(campaign, HOTCOLD, "orig", run_dir, attempt=1, max_attempts=2)
    assert first.status == "failed" and first.result_path is None
    assert not (run_dir / "result.json").exists(), "a retried attempt writes no result.json"
    attempt = _failure_json(run_dir, 1)
    assert attempt["status"] == "failed" and attempt["metrics"] == {}
    assert attempt["failure"]["kind"] == "exit"
    assert "exit status 3" in attempt["failure"]["reason"]
    assert "boom-from-workload" in attempt["failure"]["log_tail"]

    final, _ = run_one(campaign, HOTCOLD, "orig", run_dir, attempt=2, max_attempts=2)
    assert final.status == "failed" and final.result_path == run_dir / "result.json"
    result = json.loads((run_dir / "result.json").read_text())
    jsonschema.validate(result, _schema())
    assert result["status"] == "failed" and result["metrics"] == {}
    assert result["samples"] is None and result["record"] is None
    assert result["run"]["attempt"] == 2
    assert result["failure"]["kind"] == "exit" and "exit status 3" in result["failure"]["reason"]
    assert "boom-from-workload" in result["failure"]["log_tail"]
    assert result["provenance"]["guest"]["kernel_release"] == image.kernel_release


def test_run_timeout_is_marked_failed_by_the_cli(image, tmp_path):
    # hotcold at 0.15 runs ~20 s; the campaign allows 10 s.
    campaign = write_campaign(tmp_path / "campaign.yaml", run_timeout_s=10)
    out = tmp_path / "timeout"
    common = ["run", "--campaign", str(campaign), "--workload", HOTCOLD, "--config", "orig"]
    first = cli(*common, "--out", str(out), "--attempt", "1", "--max-attempts", "2")
    assert first.returncode == 1, first.stderr
    assert "will be retried" in first.stderr and "timeout" in first.stderr
    assert not (out / "result.json").exists()
    attempt = _failure_json(out, 1)
    assert attempt["failure"]["kind"] == "timeout" and attempt["metrics"] == {}

    final = cli(*common, "--out", str(out), "--attempt", "2", "--max-attempts", "2")
    assert final.returncode == 1, final.stderr
    assert f"recorded in {out / 'result.json'}" in final.stderr
    result = json.loads((out / "result.json").read_text())
    jsonschema.validate(result, _schema())
    assert result["status"] == "failed" and result["failure"]["kind"] == "timeout"
    assert "workload timeout" in result["failure"]["reason"]
    assert result["failure"]["log_tail"] is not None
    assert result["metrics"] == {} and result["run"]["attempt"] == 2
    # --failed-ok: the pipeline goes on after a run that failed for good.
    again = cli(*common, "--out", str(out), "--attempt", "2", "--max-attempts", "2", "--failed-ok")
    assert again.returncode == 0, again.stderr


# ------------------------------------------------------------- nothing left behind


def test_sigkilled_run_leaves_no_qemu_and_the_next_run_works(image, tmp_path):
    import os
    import signal
    import subprocess
    import time

    from guest_helpers import CLI, REPO, gone, qemu_children_of

    campaign = write_campaign(tmp_path / "campaign.yaml")
    killed_dir = tmp_path / "killed"
    argv = [*CLI, "run", "--campaign", str(campaign), "--workload", HOTCOLD, "--config", "rec"]
    run = subprocess.Popen(
        [*argv, "--out", str(killed_dir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO,
    )  # fmt: skip
    try:
        # Mid-run: DAMON is on in the guest (the ownership record appears when it starts).
        deadline = time.monotonic() + 600
        owned = killed_dir / "attempt-1" / "owned-kdamonds.json"
        while not owned.exists():
            assert run.poll() is None, f"the run ended (exit {run.returncode}) before DAMON started"
            assert time.monotonic() < deadline, "DAMON never started in the run"
            time.sleep(0.2)
        (qemu,) = qemu_children_of(run.pid)
        os.kill(run.pid, signal.SIGKILL)
        run.wait(timeout=30)
        assert gone(qemu, 30), f"QEMU {qemu} outlived its SIGKILLed `damon-eval run`"
    finally:
        run.kill()
    assert not (killed_dir / "result.json").exists()

    again = tmp_path / "again"
    proc = subprocess.run(
        [*argv, "--out", str(again)], capture_output=True, text=True, cwd=REPO, timeout=900
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads((again / "result.json").read_text())
    assert result["status"] == "ok" and result["record"]["nr_snapshots"] > 0
    # The killed run's overlay and sockets were swept by the next start.
    assert not list(killed_dir.glob("attempt-1/.guest/*.qcow2"))
