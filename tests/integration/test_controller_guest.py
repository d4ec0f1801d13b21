"""The DAMON controller against the guest's real kernel (Debian trixie 6.12), over SSH.

One guest, started with ``damon-eval guest boot`` so that the CLI and helper
processes can attach to it by name, serves every check of this module; each
test leaves DAMON as it found it (no kdamond directory) and asserts so.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from guest_helpers import REPO, cli, require_image

from damon_eval.damon.controller import DamonController, OwnershipRegistry, build_kdamond
from damon_eval.damon.errors import DamonBusyError, DamonError
from damon_eval.damon.model import Target
from damon_eval.damon.schemes import parse_schemes
from damon_eval.damon.selfcheck import run_selfchecks
from damon_eval.errors import FsError

pytestmark = pytest.mark.guest

KDAMONDS = "/sys/kernel/mm/damon/admin/kdamonds"


@pytest.fixture(scope="module")
def guest():
    from guest_helpers import booted_guest

    require_image()
    with booted_guest(f"ctl{os.getpid()}") as guest:
        yield guest


@pytest.fixture
def clean_damon(guest):
    """Every test starts and must end with no kdamond directory in the guest."""
    assert guest.fs.read(f"{KDAMONDS}/nr_kdamonds").strip() == "0"
    yield
    assert guest.fs.read(f"{KDAMONDS}/nr_kdamonds").strip() == "0", "a kdamond was left behind"
    assert not guest.fs.exists("/sys/kernel/tracing/instances/damon-eval")


def _runner(guest):
    return lambda script: guest.run_script(script, timeout_s=300)


def _start_sleeper(guest) -> int:
    """A guest process to monitor that lives until killed."""
    result = guest.run("nohup sleep 3600 >/dev/null 2>&1 </dev/null & echo $!", timeout_s=30)
    return int(result.stdout.strip())


def test_selfchecks_pass_on_the_real_kernel(guest, clean_damon, tmp_path):
    registry = OwnershipRegistry(tmp_path / "owned.json")
    results = {r.name: r for r in run_selfchecks(guest.fs, _runner(guest), registry=registry)}
    assert set(results) == {"vaddr_hot_buffer", "paddr_system_ram", "tracefs_recording"}
    for result in results.values():
        assert result.status == "pass", f"{result.name}: {result.message} {result.details}"
    # vaddr + stat scheme: the 64 MiB buffer the toucher keeps writing is found hot in
    # the scheme's tried regions, and the scheme counted tries.
    vaddr = results["vaddr_hot_buffer"].details
    lo, hi = vaddr["buffer"]
    assert vaddr["hot_bytes_in_buffer"] >= 0.5 * (hi - lo)
    assert vaddr["stats"]["nr_tried"] > 0 and vaddr["stats"]["sz_tried"] > 0
    assert max(vaddr["nr_regions"]) >= 1
    # paddr over System RAM: regions inside RAM covering it, and the kdamond kept running.
    paddr = results["paddr_system_ram"].details
    ram_lo, ram_hi = paddr["system_ram"]
    assert paddr["kdamond_running"] and paddr["covered_bytes"] >= 0.9 * (ram_hi - ram_lo)
    # tracefs instance: damon_aggregated events, CLOCK_MONOTONIC stamps, the buffer hot.
    trace = results["tracefs_recording"].details
    assert trace["hot_events_in_buffer"] > 0
    assert registry.entries() == []  # every session removed its ownership record


def test_features_and_status_cli_against_the_guest(guest, clean_damon):
    # Read-only: without a kdamond directory, sysfs does not show the context files.
    read_only = json.loads(
        cli("damon", "features", "--guest", guest.name, "--json", check=True).stdout
    )
    assert read_only["interface"] == "sysfs" and read_only["operations"] is None
    assert "damon_aggregated" in read_only["tracepoints"]
    assert read_only["kernel_release"] == guest.image.kernel_release
    probed = json.loads(
        cli("damon", "features", "--guest", guest.name, "--probe", "--json", check=True).stdout
    )
    assert {"vaddr", "fvaddr", "paddr"} <= set(probed["operations"])
    assert {"pageout", "hugepage", "nohugepage", "stat"} <= set(probed["scheme_actions"])
    assert {"update_schemes_stats", "update_schemes_tried_regions"} <= set(probed["state_commands"])
    assert probed["notes"] == []
    assert json.loads(cli("damon", "status", "--guest", guest.name, "--json").stdout) == []

    # A session of ours (default registry, as the CLI reads it) shows as ours.
    sleeper = _start_sleeper(guest)
    try:
        kdamond, _ = build_kdamond("vaddr", [Target(sleeper)])
        with DamonController(guest.fs).session(kdamond, handle_signals=False) as session:
            (status,) = json.loads(
                cli("damon", "status", "--guest", guest.name, "--json", check=True).stdout
            )
            assert status["state"] == "on" and status["pid"] == session.pid
            assert status["operations"] == "vaddr" and status["ours"] is True
        assert DamonController(guest.fs).status() == []
    finally:
        guest.run(f"kill {sleeper}", timeout_s=30)


_FOREIGN = """
set -e
cd {kdamonds}
echo 1 > nr_kdamonds
echo 1 > 0/contexts/nr_contexts
echo vaddr > 0/contexts/0/operations
echo 1 > 0/contexts/0/targets/nr_targets
echo {pid} > 0/contexts/0/targets/0/pid_target
echo on > 0/state
cat 0/pid
"""


def _foreign_view(guest) -> dict[str, str]:
    paths = [
        f"{KDAMONDS}/nr_kdamonds",
        f"{KDAMONDS}/0/state",
        f"{KDAMONDS}/0/pid",
        f"{KDAMONDS}/0/contexts/0/operations",
        f"{KDAMONDS}/0/contexts/0/targets/0/pid_target",
        f"{KDAMONDS}/0/contexts/0/monitoring_attrs/intervals/aggr_us",
    ]
    return guest.fs.read_many(paths)


def test_foreign_kdamond_is_refused_and_left_untouched(guest, clean_damon, tmp_path):
    sleeper = _start_sleeper(guest)
    # A kdamond started by "someone else": sysfs written directly, not by damon-eval.
    started = guest.run_script(_FOREIGN.format(kdamonds=KDAMONDS, pid=sleeper), timeout_s=60)
    try:
        assert started.exit_status == 0, started.stderr
        foreign_pid = int(started.stdout.strip())
        before = _foreign_view(guest)
        assert before[f"{KDAMONDS}/0/state"].strip() == "on"
        # The kernel itself refuses nr_kdamonds while a kdamond runs, and ShellFs
        # reports its errno (EBUSY, not the "I/O error" of dash's builtin printf) ...
        with pytest.raises(FsError) as refused:
            guest.fs.write(f"{KDAMONDS}/nr_kdamonds", "2")
        assert refused.value.errno == errno.EBUSY, str(refused.value)
        # ... and the controller refuses before writing anything, naming the kdamond.
        registry = OwnershipRegistry(tmp_path / "owned.json")
        controller = DamonController(guest.fs, registry=registry)
        kdamond, schemes = build_kdamond(
            "vaddr", [Target(sleeper)], schemes=parse_schemes("min max min max min max stat")
        )
        session = controller.session(kdamond, schemes=schemes, handle_signals=False)
        with pytest.raises(DamonBusyError) as info, session:
            pytest.fail("a session started while a foreign kdamond runs")
        message = str(info.value)
        assert "kdamond 0" in message and f"pid {foreign_pid}" in message
        assert "Nothing was changed" in message
        assert _foreign_view(guest) == before
        assert registry.entries() == []
        (status,) = json.loads(cli("damon", "status", "--guest", guest.name, "--json").stdout)
        assert (status["state"], status["pid"], status["ours"]) == ("on", foreign_pid, False)
    finally:
        guest.run_script(
            f"echo off > {KDAMONDS}/0/state 2>/dev/null; echo 0 > {KDAMONDS}/nr_kdamonds; "
            f"kill {sleeper}\n",
            timeout_s=60,
        )


def test_parameters_the_kernel_refuses_are_explained(guest, clean_damon, tmp_path, caplog):
    # DAMON checks targets only at "on": a pid that does not exist gives EINVAL there.
    gone_pid = int(guest.run("sh -c 'echo $$'", timeout_s=30).stdout)
    controller = DamonController(guest.fs, registry=OwnershipRegistry(tmp_path / "owned.json"))
    kdamond, _ = build_kdamond("vaddr", [Target(gone_pid)])
    with pytest.raises(DamonError) as info:
        controller.start(kdamond)
    message = str(info.value)
    assert "the kernel refused to turn" in message and f"target pids [{gone_pid}]" in message
    # Nothing runs, and the refused start removed what it staged.
    left = guest.fs.read(f"{KDAMONDS}/nr_kdamonds").strip()
    assert left == "0", f"nr_kdamonds {left} after a refused start; log: {caplog.text}"


_SESSION_HOLDER = textwrap.dedent(
    """
    import sys, time
    from damon_eval.damon.controller import (
        DamonController, OwnershipRegistry, SessionInterrupted, build_kdamond)
    from damon_eval.damon.model import Target
    from damon_eval.guest.machine import Guest

    guest = Guest.attach(sys.argv[1])
    controller = DamonController(guest.fs, registry=OwnershipRegistry(sys.argv[3]))
    kdamond, _ = build_kdamond("vaddr", [Target(int(sys.argv[2]))])
    try:
        with controller.session(kdamond) as session:
            print("started", session.pid, flush=True)
            time.sleep(3600)
    except SessionInterrupted as exc:
        print("interrupted", exc.signum, flush=True)
        sys.exit(128 + exc.signum)
    """
)


def test_sigterm_to_a_session_holder_turns_damon_off(guest, clean_damon, tmp_path):
    sleeper = _start_sleeper(guest)
    registry_path = tmp_path / "owned.json"
    holder = subprocess.Popen(
        [sys.executable, "-c", _SESSION_HOLDER, guest.name, str(sleeper), str(registry_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        line = holder.stdout.readline()
        assert line.startswith("started "), (
            f"{line!r} {holder.stderr.read() if holder.poll() is not None else ''}"
        )
        kdamond_pid = int(line.split()[1])
        assert guest.fs.read(f"{KDAMONDS}/0/state").strip() == "on"
        assert guest.run(f"test -d /proc/{kdamond_pid}", timeout_s=30).exit_status == 0
        assert json.loads(registry_path.read_text())["kdamonds"][0]["pid"] == kdamond_pid
        holder.send_signal(signal.SIGTERM)
        out, err = holder.communicate(timeout=180)
        assert holder.returncode == 128 + signal.SIGTERM, err
        assert out.strip() == f"interrupted {int(signal.SIGTERM)}"
        # DAMON is off in the guest: the kdamond thread is gone, its directory removed.
        deadline = time.monotonic() + 30
        while guest.run(f"test -d /proc/{kdamond_pid}", timeout_s=30).exit_status == 0:
            assert time.monotonic() < deadline, f"kdamond {kdamond_pid} still runs"
            time.sleep(0.5)
        assert guest.fs.read(f"{KDAMONDS}/nr_kdamonds").strip() == "0"
        assert json.loads(registry_path.read_text())["kdamonds"] == []
        # The monitored process itself was not harmed.
        assert guest.run(f"kill -0 {sleeper}", timeout_s=30).exit_status == 0
    finally:
        holder.kill()
        guest.run(f"kill {sleeper}", timeout_s=30)
