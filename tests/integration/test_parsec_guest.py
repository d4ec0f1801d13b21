"""Real PARSEC 3.0 in real guests: the shared tarball built with parsecmgmt, run by the pipeline.

streamcluster, swaptions, splash2x.fft and splash2x.radix (parameter inputs, so
any size runs from the shared tree) under orig and rec at simsmall: the build
(on the host in a chroot of the guest image when run as root, else in the
guest), the runs, and that DAMON targets the benchmark binary itself, not
parsecmgmt or SPLASH-2X's run.sh.  The built PARSEC is cached under the image
cache, so a second test session only unpacks it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.guest

SNAKEMAKE = shutil.which("snakemake", path=str(Path(sys.executable).parent)) or "snakemake"
REPO = Path(__file__).resolve().parents[2]
TARBALL = Path(
    os.environ.get(
        "DAMON_EVAL_TEST_PARSEC", REPO.parent / "shared" / "parsec" / "parsec-3.0.tar.gz"
    )
)
BINARIES = {
    "parsec3/streamcluster": "streamcluster",
    "parsec3/swaptions": "swaptions",
    "splash2x/fft": "fft",
    "splash2x/radix": "radix",
}


@pytest.fixture(scope="module")
def parsec_campaign(tmp_path_factory):
    if not TARBALL.is_file():
        pytest.skip(
            f"no PARSEC 3.0 tarball at {TARBALL} (set DAMON_EVAL_TEST_PARSEC): the real-PARSEC "
            "guest tests need one"
        )
    missing = [t for t in ("qemu-system-x86_64", "qemu-img", "mmdebstrap") if not shutil.which(t)]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} to boot guests")
    from damon_eval.guest import cached_image, load_spec

    if cached_image(load_spec(REPO / "configs/guest/parsec.yaml")) is None and os.geteuid() != 0:
        pytest.skip("the PARSEC guest image is not cached and building it needs root")
    work = tmp_path_factory.mktemp("parsec")
    campaign = work / "parsec.yaml"
    campaign.write_text(
        json.dumps(
            {
                "campaign": "parsec-guest-test",
                "guest": {"spec": "guest/parsec.yaml", "vcpus": 2, "memory_mib": 2048},
                "workloads": list(BINARIES),
                "parsec": {"path": str(TARBALL), "input": "simsmall"},
                "configs": ["orig", "rec"],
                "repeats": 1,
                "max_attempts": 1,
                "run_timeout_s": 1800,
                "results_dir": str(work / "results"),
            }
        )
    )
    proc = subprocess.run(
        [SNAKEMAKE, "--cores", "2", "--configfile", str(campaign)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=5400,
    )
    results = work / "results"
    logs = sorted((results / "logs").rglob("*.log"))
    tails = "\n".join(f"== {p}\n{p.read_text()[-1500:]}" for p in logs[-4:])
    assert proc.returncode == 0, proc.stderr[-3000:] + tails
    return results


def _results(results):
    found = {}
    for path in sorted((results / "runs").glob("*/*/*/01/result.json")):
        suite, workload, config = path.parts[-5:-2]
        found[(f"{suite}/{workload}", config)] = json.loads(path.read_text())
    return found


def test_every_package_built_once_before_the_runs(parsec_campaign):
    summary = json.loads((parsec_campaign / "guest" / "parsec-build.json").read_text())
    if summary["mode"] == "host":
        assert {p: s["ok"] for p, s in summary["packages"].items()} == {
            "streamcluster": True,
            "swaptions": True,
            "splash2x.fft": True,
            "splash2x.radix": True,
        }
    else:
        assert os.geteuid() != 0 or shutil.which("debugfs") is None


def test_runs_time_and_measure_the_benchmark_binary(parsec_campaign):
    runs = _results(parsec_campaign)
    assert sorted(runs) == sorted((w, c) for w in BINARIES for c in ("orig", "rec"))
    for (workload, config), result in runs.items():
        assert result["status"] == "ok", (workload, config, result["failure"])
        metrics, provenance = result["metrics"], result["provenance"]
        assert 0.5 < metrics["runtime"] < 1800, (workload, config, metrics["runtime"])
        # The benchmark's own memory, well above a shell's (~1 MiB).
        assert metrics["rss.avg"] > 2000, (workload, config, metrics["rss.avg"])
        target = provenance["workload"]["target"]
        assert target["comm"] == BINARIES[workload], (workload, target)
        assert target["exe"].endswith(f"/bin/{BINARIES[workload]}"), (workload, target)
        assert "gcc-damon-eval" in target["exe"]
        assert ":built:" in provenance["workload"]["version"]


def test_rec_records_the_benchmark_process(parsec_campaign):
    for (workload, config), result in _results(parsec_campaign).items():
        if config != "rec":
            continue
        assert result["record"]["nr_snapshots"] > 0, workload
        kdamond = result["provenance"]["damon"]["kdamond"]
        targets = [t["pid"] for c in kdamond["contexts"] for t in c["targets"]]
        assert targets == [result["provenance"]["workload"]["target"]["pid"]], workload
