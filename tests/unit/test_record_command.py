"""damon-eval record: arguments, refusals, the record file, and a whole recording on this
machine against the fake kernel with the real agent (no root: DAMON and tracefs are fake)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from agent_helpers import need_compiler
from fakekernel import FakeKernel

from damon_eval.cli import main
from damon_eval.errors import ConfigError
from damon_eval.machines.local import LocalMachine
from damon_eval.measure.recording import (
    RecordRequest,
    RecordTarget,
    parse_target,
    publish_record,
    record,
)
from damon_eval.records import load_record

LINE = (
    "kdamond.0-516 [001] ..... {ts}: damon_aggregated: target_id=0 nr_regions=2 "
    "{start}-{end}: {acc} {age}"
)


def trace_lines(nr_snapshots: int, *, t0: float = 10.0) -> list[str]:
    lines = []
    for t in range(nr_snapshots):
        for r in range(2):
            start = 4096 * (r + 1)
            lines.append(
                LINE.format(ts=f"{t0 + t:.6f}", start=start, end=start + 4096, acc=t % 5, age=r)
            )
    return lines


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["1234"], RecordTarget("pid", pid=1234)),
        (["--", "./prog", "-x", "1"], RecordTarget("command", command=("./prog", "-x", "1"))),
        (["sleep 5"], RecordTarget("command", command=("sh", "-c", "exec sleep 5"))),
        (["masim|tee"], RecordTarget("command", command=("sh", "-c", "exec masim|tee"))),
        (["sleep"], RecordTarget("command", command=("sleep",))),
    ],
)
def test_targets(words, expected):
    assert parse_target(words) == expected


def test_target_errors():
    with pytest.raises(ConfigError, match="nothing to record"):
        parse_target([])
    assert parse_target([], operations="paddr").kind == "memory"
    with pytest.raises(ConfigError, match="not both"):
        parse_target(["ls"], workload="synthetic/zigzag")
    with pytest.raises(ConfigError, match="out of range"):
        parse_target(["99999999999"])
    with pytest.raises(ConfigError, match="--ops paddr monitors physical memory"):
        RecordRequest(RecordTarget("pid", pid=5), operations="paddr")
    with pytest.raises(ConfigError, match="'fvaddr' is not supported; valid: vaddr, paddr"):
        RecordRequest(RecordTarget("pid", pid=5), operations="fvaddr")
    with pytest.raises(ConfigError, match="--duration -1"):
        RecordRequest(RecordTarget("pid", pid=5), duration_s=-1)


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["record", "--root", "/nonexistent-x", "ls"], "is not a directory"),
        (["record", "--scale", "2", "ls"], "--scale applies to --workload only"),
        (["record", "--workload", "synthetic/nope"], "synthetic/nope"),
        (["record", "-s", "2000", "-a", "1000", "ls"], "sample_us=2000 must be <= aggr_us"),
        (["record", "-a", "2000000", "ls"], "--aggr 2000000 must be <= --updr"),
        (["record", "--ops", "paddr", "12"], "--ops paddr monitors physical memory"),
        (["record", "--poll-interval", "0", "ls"], "--poll-interval 0"),
        (["record", "--ssh", "root@h:0x", "ls"], "expected USER@HOST"),
        (["record", "--known-hosts", "kh", "ls"], "--known-hosts only apply with --ssh"),
    ],
)
def test_bad_arguments_are_one_line_errors(argv, fragment, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and fragment in err, err


def test_help_and_export_still_work(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["record", "-h"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "damon-eval record export" in out and "--guest" in out and "--ssh" in out
    src = tmp_path / "in.perf_script"
    publish_record([line + "\n" for line in trace_lines(3)], src)
    out_path = tmp_path / "out.json"
    assert main(["record", "export", "-i", str(src), "-o", str(out_path), "--format", "json"]) == 0
    assert json.loads(out_path.read_text())


def test_local_recording_refuses_a_busy_machine_before_running_anything(tmp_path, capsys,
                                                                         monkeypatch):  # fmt: skip
    monkeypatch.setenv("DAMON_EVAL_CACHE", str(tmp_path / "cache"))
    kernel = FakeKernel(tmp_path / "machine")
    kernel.seed_running_kdamond(pid=77)
    marker = tmp_path / "ran"
    before = kernel.snapshot("/")
    argv = ["record", "--root", str(kernel.root), "-o", str(tmp_path / "r"), "touch", str(marker)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "DAMON on local:" in err and "is busy: kdamond 0 (pid 77, paddr)" in err
    assert not marker.exists() and not (tmp_path / "r").exists()
    assert kernel.snapshot("/") == before and kernel.writes == []
    assert not (tmp_path / "cache" / "agent").exists(), "nothing is built on a busy machine"


def test_publish_record_keeps_complete_snapshots_and_lines_only(tmp_path):
    lines = [line + "\n" for line in trace_lines(4)]
    lines.insert(3, "CPU:1 [LOST 7 EVENTS]\n")
    lines.insert(1, "sshd-12 [000] ..... 9.0: sched_switch: whatever\n")
    lines.append(LINE.format(ts="20.000000", start=4096, end=8192, acc=1, age=0) + "\n")
    lines.append(LINE.format(ts="20.000100", start=8192, end=12288, acc=1, age=0)[:-9])  # cut
    out = tmp_path / "sub" / "damon.data"
    snapshots, events, lost, dropped = publish_record(lines, out)
    assert (snapshots, events, lost, dropped) == (4, 8, 7, 2)
    record = load_record(out)  # no --allow-partial needed
    assert record.n_snapshots == 4
    assert not list(out.parent.glob(".damon.data*")), "no temporary file is left"


def test_a_snapshot_that_lost_events_is_dropped_not_glued(tmp_path):
    lines = [line + "\n" for line in trace_lines(4)]
    del lines[3]  # the second region of the second snapshot was lost
    snapshots, events, _, dropped = publish_record(lines, tmp_path / "r")
    assert (snapshots, events, dropped) == (3, 6, 1)
    ends = [int(t) for chunk in load_record(tmp_path / "r").chunks() for t in chunk.end_ns]
    assert ends == [10_000_000_000, 12_000_000_000, 13_000_000_000]


@pytest.fixture
def fake_machine(tmp_path, monkeypatch):
    """A fake kernel whose trace instance's trace_pipe is a FIFO (it blocks like the real
    one) holding 5 snapshots and the first line of a sixth when the instance is made."""
    need_compiler()
    monkeypatch.setenv("DAMON_EVAL_CACHE", str(tmp_path / "cache"))
    kernel = FakeKernel(tmp_path / "machine")
    make_instance = kernel._make_instance
    writers: list[int] = []

    def instance_with_trace(path: str) -> None:
        make_instance(path)
        pipe = kernel.host(f"{path}/trace_pipe")
        pipe.unlink()
        os.mkfifo(pipe)
        writers.append(os.open(pipe, os.O_RDWR | os.O_NONBLOCK))  # keeps the data in it
        cut = LINE.format(ts="30.0", start=4096, end=8192, acc=1, age=0)
        os.write(writers[-1], "".join(f"{line}\n" for line in [*trace_lines(5), cut]).encode())

    monkeypatch.setattr(kernel, "_make_instance", instance_with_trace)
    yield kernel, LocalMachine(kernel.root, fs=kernel.fs)
    for fd in writers:
        os.close(fd)


def _agent() -> str:
    from damon_eval.agent.build import build_agent_locally

    return str(build_agent_locally())


def test_local_recording_of_a_command_end_to_end(fake_machine, tmp_path):
    kernel, machine = fake_machine
    marker = tmp_path / "ran"
    out = tmp_path / "damon.data"
    request = RecordRequest(
        parse_target(["sh", "-c", f"echo $$ > {marker}; sleep 0.3"]), output=out,
        poll_interval_s=0.2,
    )  # fmt: skip
    outcome = record(machine, request, agent_path=_agent(), run_dir=str(tmp_path / "run"))
    assert outcome.status == "ok" and not outcome.interrupted
    assert (outcome.nr_snapshots, outcome.nr_events, outcome.nr_dropped_lines) == (5, 10, 1)
    held_pid = int(marker.read_text())
    # DAMON targeted the process the agent held at exec (same pid after exec)
    assert ("/sys/kernel/mm/damon/admin/kdamonds/0/contexts/0/targets/0/pid_target",
            str(held_pid)) in kernel.writes  # fmt: skip
    attrs = {p.rsplit("/", 2)[-2] + "/" + p.rsplit("/", 1)[-1]: v for p, v in kernel.writes}
    assert attrs["intervals/sample_us"] == "5000" and attrs["intervals/aggr_us"] == "100000"
    assert attrs["nr_regions/min"] == "10" and attrs["nr_regions/max"] == "1000"
    # DAMON off, kdamond directories gone, trace instance removed
    assert ("/sys/kernel/mm/damon/admin/kdamonds/0/state", "off") in kernel.writes
    assert not kernel.host("/sys/kernel/tracing/instances/damon-eval").exists()
    assert load_record(out).n_snapshots == 5
    assert "recorded 5 snapshots (10 region lines)" in outcome.summary()


def test_local_recording_of_a_pid_until_it_exits(fake_machine, tmp_path):
    kernel, machine = fake_machine
    target = subprocess.Popen(["sleep", "3"])  # alive when record() checks it, on a loaded host too
    # reaped at once, as a process's parent would (a zombie still answers kill -0)
    threading.Thread(target=target.wait, daemon=True).start()
    try:
        request = RecordRequest(
            RecordTarget("pid", pid=target.pid), output=tmp_path / "p.data", poll_interval_s=0.2
        )
        outcome = record(machine, request, agent_path=_agent(), run_dir=str(tmp_path / "run"))
    finally:
        target.wait()
    assert outcome.status == "ok" and outcome.nr_snapshots == 5
    assert ("/sys/kernel/mm/damon/admin/kdamonds/0/contexts/0/targets/0/pid_target",
            str(target.pid)) in kernel.writes  # fmt: skip


def test_missing_pid_is_refused(fake_machine, tmp_path):
    _, machine = fake_machine
    dead = subprocess.Popen(["true"])
    dead.wait()
    request = RecordRequest(RecordTarget("pid", pid=dead.pid), output=tmp_path / "x")
    with pytest.raises(ConfigError, match=f"no process with pid {dead.pid}"):
        record(machine, request, agent_path="/nonexistent", run_dir=str(tmp_path / "run"))


def test_sigint_stops_recording_cleanly(fake_machine, tmp_path):
    """Ctrl-C: the command is stopped, DAMON off, instance removed, the record written."""
    kernel, machine = fake_machine
    out = tmp_path / "int.data"
    request = RecordRequest(parse_target(["sleep", "60"]), output=out, poll_interval_s=0.2)
    result: dict = {}

    def interrupt_when_running() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if ("/sys/kernel/mm/damon/admin/kdamonds/0/state", "on") in kernel.writes:
                time.sleep(0.5)
                signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
                return
            time.sleep(0.05)

    threading.Thread(target=interrupt_when_running, daemon=True).start()
    started = time.monotonic()
    result["outcome"] = record(machine, request, agent_path=_agent(),
                               run_dir=str(tmp_path / "run"))  # fmt: skip
    outcome = result["outcome"]
    assert time.monotonic() - started < 30
    assert outcome.interrupted and outcome.status == "aborted"
    assert "stopped by a signal" in outcome.summary()
    assert ("/sys/kernel/mm/damon/admin/kdamonds/0/state", "off") in kernel.writes
    assert not kernel.host("/sys/kernel/tracing/instances/damon-eval").exists()
    assert load_record(out).n_snapshots == 5
    status = (tmp_path / "run" / "status").read_text()
    pid = int((tmp_path / "run" / "target.pid").read_text())
    assert "status=aborted" in status
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()


def test_sigterm_in_a_subprocess_stops_cleanly(tmp_path):
    """SIGTERM to a recording process: the same clean stop as Ctrl-C, exit status 0."""
    need_compiler()
    script = tmp_path / "rec.py"
    script.write_text(
        "import os, sys\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})\n"
        "from fakekernel import FakeKernel\n"
        "from damon_eval.machines.local import LocalMachine\n"
        "from damon_eval.agent.build import build_agent_locally\n"
        "from damon_eval.measure.recording import RecordRequest, parse_target, record\n"
        f"kernel = FakeKernel({str(tmp_path / 'machine')!r})\n"
        "machine = LocalMachine(kernel.root, fs=kernel.fs)\n"
        f"request = RecordRequest(parse_target(['sleep', '60']), output={str(tmp_path / 'o')!r},"
        " poll_interval_s=0.2)\n"
        "print('start', flush=True)\n"
        f"out = record(machine, request, agent_path=str(build_agent_locally()), "
        f"run_dir={str(tmp_path / 'run')!r})\n"
        "print(out.status, out.interrupted, flush=True)\n"
        "print(kernel.host('/sys/kernel/tracing/instances/damon-eval').exists(), flush=True)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"DAMON_EVAL_CACHE": str(tmp_path / "cache"), "PATH": "/usr/bin:/bin"},
    )
    deadline = time.monotonic() + 60
    while not (tmp_path / "run" / "target.pid").exists():
        assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read()
        time.sleep(0.1)
    time.sleep(1.5)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out.splitlines()[1:] == ["aborted True", "False"], out + err
