"""--ssh and `damon-eval record` against a real kernel: a guest is the remote machine.

A guest from `damon-eval guest boot` is an SSH host on 127.0.0.1:<port> whose key is
pinned in its known_hosts; `--ssh root@127.0.0.1:<port> --known-hosts ... --identity
<image key> --no-agent` reaches it exactly as a user's test box.  Under TCG a restore
takes ~3 s and the first preparation on the "remote" (agent and accgen built with gcc)
a minute or two; later ones reuse /var/tmp/damon-eval/<digest>.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.guest

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "damon_eval"]
ACCEL = os.environ.get("DAMON_EVAL_TEST_ACCEL", "auto")
ADMIN = "/sys/kernel/mm/damon/admin/kdamonds"
THP = "/sys/kernel/mm/transparent_hugepage/enabled"
TOUCHER = (
    "import mmap, time\n"
    "m = mmap.mmap(-1, 64 << 20, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)\n"
    "end = time.monotonic() + {seconds}\n"
    "while time.monotonic() < end:\n"
    "    for i in range(0, 16 << 20, 4096):\n"
    "        m[i] = 1\n"
)


def _cli(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=REPO,
                          timeout=timeout, check=False)  # fmt: skip


@pytest.fixture(scope="module")
def booted():
    """A guest left up by `damon-eval guest boot`, reached as a remote machine."""
    missing = [t for t in ("qemu-system-x86_64", "qemu-img", "mmdebstrap") if not shutil.which(t)]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (apt-get install qemu-system-x86 qemu-utils "
                    "mmdebstrap)")  # fmt: skip
    from damon_eval.guest import cached_image, load_spec

    if cached_image(load_spec()) is None and os.geteuid() != 0:
        pytest.skip("the guest image is not cached and building it needs root")
    from damon_eval.guest.detached import guests_dir
    from damon_eval.guest.machine import Guest

    name = f"remote{os.getpid()}"
    boot = _cli("guest", "boot", "--name", name, "--accel", ACCEL)
    assert boot.returncode == 0, boot.stderr
    guest = Guest.attach(name)
    try:
        ssh = [
            "--ssh", f"root@127.0.0.1:{guest.ssh_port}",
            "--known-hosts", str(guest.known_hosts_path),
            "--identity", str(guest.image.client_key_path),
            "--no-agent",
        ]  # fmt: skip
        yield guest, ssh
    finally:
        guest.disconnect()
        _cli("guest", "stop", "--name", name, timeout=120)
        shutil.rmtree(guests_dir() / name, ignore_errors=True)


def _clean(guest) -> dict[str, str]:
    """What a recording or run must leave behind: no kdamond on, no instance, no agent."""
    out = guest.run(
        f"echo kdamonds=$(cat {ADMIN}/nr_kdamonds); "
        "echo states=$(cat " + ADMIN + "/*/state 2>/dev/null | tr '\\n' ' '); "
        "echo instances=$(ls /sys/kernel/tracing/instances | tr '\\n' ' '); "
        "echo agents=$(pgrep -x de-agent | tr '\\n' ' '); "
        "echo thp=$(cat " + THP + "); echo swaps=$(tail -n +2 /proc/swaps | cut -d' ' -f1)",
        timeout_s=30,
    ).stdout
    facts = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    assert "on" not in facts["states"].split(), facts
    assert "damon-eval" not in facts["instances"].split(), facts
    assert facts["agents"].strip() == "", facts
    return facts


def test_features_and_status_over_ssh(booted):
    guest, ssh = booted
    features = _cli("damon", "features", *ssh, "--json", timeout=300)
    assert features.returncode == 0, features.stderr
    data = json.loads(features.stdout)
    assert data["interface"] == "sysfs" and data["kernel_release"] == guest.image.kernel_release
    assert "damon_aggregated" in data["tracepoints"]
    status = _cli("damon", "status", *ssh, timeout=300)
    assert status.returncode == 0 and status.stdout.strip() == "no kdamonds", status


def test_record_over_ssh_then_reports(booted, tmp_path):
    guest, ssh = booted
    out = tmp_path / "touch.data"
    rec = _cli("record", *ssh, "-o", str(out), "--poll-interval", "2", "--",
               "python3", "-c", TOUCHER.format(seconds=6))  # fmt: skip
    assert rec.returncode == 0, rec.stderr
    assert f"to {out}: the target ended" in rec.stdout
    _clean(guest)
    wss = _cli("report", "wss", "-i", str(out), "--range", "50", "51", "1")
    assert wss.returncode == 0, wss.stderr
    median = int(wss.stdout.split()[-1])
    assert 8 << 20 <= median <= 40 << 20, f"16 MiB touched, median working set {median}"
    raw = _cli("report", "raw", "-i", str(out))
    assert raw.returncode == 0 and "nr_regions:" in raw.stdout, raw.stderr
    guide = _cli("report", "heats", "--guide", "-i", str(out))
    assert guide.returncode == 0 and "target_id:0" in guide.stdout, guide.stderr


def test_ctrl_c_stops_an_ssh_recording_cleanly(booted, tmp_path):
    guest, ssh = booted
    out = tmp_path / "int.data"
    proc = subprocess.Popen(
        [*CLI, "record", *ssh, "-o", str(out), "--poll-interval", "2", "--",
         "python3", "-c", TOUCHER.format(seconds=600)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while "on" not in guest.run(f"cat {ADMIN}/*/state 2>/dev/null", 30).stdout.split():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(1)
        time.sleep(5)  # some snapshots
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=180)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr
    assert "stopped by a signal" in stdout
    _clean(guest)
    # (the pattern must not match the sh that runs pgrep)
    assert guest.run("pgrep -f 'mmap[.]mma[p]'", 30).exit_status == 1, "the command was stopped"
    from damon_eval.records import load_record

    assert load_record(out).n_snapshots > 5


def test_foreign_kdamond_is_refused_and_left_alone(booted, tmp_path):
    guest, ssh = booted
    start = guest.run(
        f"cd {ADMIN} && echo 1 > nr_kdamonds && echo 1 > 0/contexts/nr_contexts && "
        "echo paddr > 0/contexts/0/operations && echo 1 > 0/contexts/0/targets/nr_targets && "
        "echo on > 0/state && cat 0/pid",
        timeout_s=30,
    )
    assert start.exit_status == 0, start.stderr
    pid = start.stdout.strip()
    try:
        status = _cli("damon", "status", *ssh, timeout=300)
        assert status.stdout.splitlines()[1].split() == ["0", "on", pid, "paddr", "1", "0", "no"]
        rec = _cli("record", *ssh, "-o", str(tmp_path / "r"), "sleep 1")
        assert rec.returncode == 2
        assert f"is busy: kdamond 0 (pid {pid}, paddr)" in rec.stderr, rec.stderr
        assert not (tmp_path / "r").exists()
        run = _cli("run", *ssh, "--workload", "synthetic/zigzag", "--config", "rec",
                   "--scale", "0.05", "--out", str(tmp_path / "run"))  # fmt: skip
        assert run.returncode == 1
        result = json.loads((tmp_path / "run" / "result.json").read_text())
        assert (
            result["status"] == "failed" and f"kdamond 0 (pid {pid}" in result["failure"]["reason"]
        )
        after = guest.run(f"cat {ADMIN}/0/state {ADMIN}/0/pid", timeout_s=30).stdout.split()
        assert after == ["on", pid], "the foreign kdamond was not touched"
    finally:
        guest.run(f"echo off > {ADMIN}/0/state; echo 0 > {ADMIN}/nr_kdamonds", timeout_s=30)


def test_run_over_ssh_restores_thp_and_swap(booted, tmp_path):
    """orig and prcl on the "remote": THP and its own swap are as before afterwards."""
    guest, ssh = booted
    setup = guest.run(
        f"echo always > {THP} && dd if=/dev/zero of=/var/tmp/swapfile bs=1M count=32 "
        "status=none && chmod 600 /var/tmp/swapfile && mkswap /var/tmp/swapfile >/dev/null && "
        "swapon -p 5 /var/tmp/swapfile && lsmod | grep -c '^zram' || true",
        timeout_s=120,
    )
    assert setup.exit_status == 0, setup.stderr
    zram_before = setup.stdout.strip()
    try:
        for config in ("orig", "prcl"):
            out = tmp_path / config
            run = _cli("run", *ssh, "--workload", "synthetic/zigzag", "--config", config,
                       "--scale", "0.05", "--out", str(out), "--poll-interval", "2",
                       timeout=1800)  # fmt: skip
            assert run.returncode == 0, run.stderr
            result = json.loads((out / "result.json").read_text())
            assert result["status"] == "ok" and result["metrics"]["runtime"] > 0
            system = result["provenance"]["system"]
            assert "[madvise]" in system["thp_enabled"], "the configuration's THP applied"
            guest_facts = result["provenance"]["guest"]
            assert guest_facts["accel"] == "none (bare metal or foreign VM)"
            assert guest_facts["kernel_release"] == guest.image.kernel_release
            if config == "prcl":
                assert "/dev/zram0" in system["swap"] and "/var/tmp/swapfile" not in system["swap"]
                assert result["provenance"]["damon"]["schemes"], "prcl ran its scheme"
            facts = _clean(guest)
            assert facts["thp"] == "[always] madvise never", facts
            swaps = guest.run("tail -n +2 /proc/swaps", timeout_s=30).stdout.split()
            assert swaps[0] == "/var/tmp/swapfile" and swaps[-1] == "5", swaps
            assert len(swaps) == 5, "only the machine's own swap is on"
            zram_now = guest.run("lsmod | grep -c '^zram' || true", timeout_s=30).stdout.strip()
            assert zram_now == zram_before
    finally:
        guest.run("swapoff /var/tmp/swapfile; rm -f /var/tmp/swapfile", timeout_s=60)


def test_record_in_a_named_guest_then_reports(booted, tmp_path):
    guest, _ = booted
    out = tmp_path / "zigzag.data"
    rec = _cli("record", "--guest", guest.name, "-o", str(out), "--workload", "synthetic/zigzag",
               "--scale", "0.1")  # fmt: skip
    assert rec.returncode == 0, rec.stderr
    assert "the target ended" in rec.stdout
    _clean(guest)
    from damon_eval.records import load_record

    record = load_record(out)
    assert record.n_snapshots >= 40, "7 s at 100 ms aggregation"
    wss = _cli("report", "wss", "-i", str(out))
    assert wss.returncode == 0, wss.stderr
    heats = _cli("report", "heats", "--guide", "-i", str(out))
    assert heats.returncode == 0 and "region" in heats.stdout, heats.stderr


def test_record_in_a_fresh_guest(booted, tmp_path):
    out = tmp_path / "fresh.data"
    rec = _cli("record", "--guest", "-o", str(out), "--sample", "10000", "--aggr", "200000",
               "--", "python3", "-c", TOUCHER.format(seconds=4), timeout=1800)  # fmt: skip
    assert rec.returncode == 0, rec.stderr
    raw = _cli("report", "raw", "-i", str(out))
    assert raw.returncode == 0 and raw.stdout.count("nr_regions:") >= 10, raw.stderr
