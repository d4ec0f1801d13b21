"""``de-agent hold --target-comm NAME``, compiled and run for real on this host (no root).

SPLASH-2X's ``bin/run.sh`` starts the benchmark with ``eval $RUN``: the launcher must hold
the process that execs as the benchmark binary, not the shell that starts it.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from agent_helpers import (
    alive,
    finish,
    need_compiler,
    proc_comm,
    proc_state,
    read_pid_file,
    wait_until,
)

from damon_eval.agent.build import build_agent_locally
from damon_eval.agent.protocol import AgentInvocation, hold_prefix
from damon_eval.errors import ConfigError
from damon_eval.measure.samples import load_agent_output

# longer than the kernel's 15 characters of comm: NAME is compared as the kernel keeps it
BENCH = "bench-target-binary"
BENCH_COMM = BENCH[:15]
BENCH_SCRIPT = """\
#!{python}
import os, signal, sys, time
data = bytearray(40 << 20)
for i in range(0, len(data), 4096):
    data[i] = 1
time.sleep({seconds})
print("benchmark", os.getpid(), *sys.argv[1:], "done", flush=True)
"""


@pytest.fixture(scope="module")
def agent(tmp_path_factory) -> Path:
    need_compiler()
    return build_agent_locally(tmp_path_factory.mktemp("agent-build"))


def _executable(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def bench_dir(tmp_path) -> Path:
    """A directory with the benchmark (40 MiB, 0.8 s) under a name longer than 15 chars."""
    root = tmp_path / "bin"
    root.mkdir()
    _executable(root / BENCH, BENCH_SCRIPT.format(python=sys.executable, seconds=0.8))
    return root


def _invocation(agent: Path, out: Path, command: tuple[str, ...], cwd: Path) -> list[str]:
    return AgentInvocation(
        out_dir=str(out),
        command=command,
        hold="child",
        interval_ms=100,
        agent_path=str(agent),
        cwd=str(cwd),
    ).argv()


def _launcher(agent: Path, target: str | None, *command: str) -> tuple[str, ...]:
    return (*hold_prefix(str(agent), target).split(), *command)


def _held(out: Path) -> int:
    pid = wait_until(lambda: read_pid_file(out / "target.pid"), what="target.pid")
    assert isinstance(pid, int)
    return pid


def _status_field(pid: int, key: str) -> str:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"no {key} in /proc/{pid}/status")


def _ppid(pid: int) -> int:
    return int(_status_field(pid, "PPid"))


def _run_held(agent, out, command, cwd, *, hold_s=0.3):
    """Start the agent, wait for the hold, check it, release; returns the held pid, its
    parent's (comm, whether its parent is the launcher), the exit code, stderr and times."""
    proc = subprocess.Popen(
        _invocation(agent, out, command, cwd), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    pid = _held(out)
    launcher = _launcher_pid(out)
    assert proc_state(pid) == "t", "held by its tracer, stopped at its exec"
    assert proc_comm(pid) == BENCH_COMM
    time.sleep(hold_s)
    assert proc_state(pid) == "t"
    # only the benchmark is still traced: the shell and everything else were let go
    traced = _tasks_traced_by(launcher)
    assert traced == [pid], traced
    parent = _ppid(pid)
    parent_chain = (proc_comm(parent), _ppid(parent) == launcher)
    released = time.monotonic()
    os.kill(proc.pid, signal.SIGUSR1)
    code, _, err = finish(proc)
    ended = time.monotonic()
    return pid, parent_chain, code, err.decode(), released, ended


def _launcher_pid(out: Path) -> int:
    text = (out / "events.log").read_text()
    line = next(x for x in text.splitlines() if " < held " in x)
    return int(line.split()[3])


def _tasks_traced_by(tracer: int) -> list[int]:
    traced = []
    for status in Path("/proc").glob("[0-9]*/task/[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:
            continue
        if f"\nTracerPid:\t{tracer}\n" in text:
            traced.append(int(status.parent.name))
    return sorted(traced)


def _check_measured(out: Path, pid: int, released: float, ended: float, after_s: float) -> None:
    result = load_agent_output(out)
    assert result.status.ok, result.status.error
    assert result.status.target_pid == pid
    assert result.status.command_exit_code == 0
    # the benchmark's own time: from release to its exit, not the shell's time after it
    assert released <= result.status.release_mono_s
    assert 0.8 <= result.runtime_s <= ended - released - after_s
    samples = result.samples.samples
    # the benchmark's 40 MiB, without the shell and the launcher
    assert max(s.nr_procs for s in samples) == 1
    assert 40 * 1024 <= max(s.rss_tree_kib for s in samples) < 80 * 1024
    assert f"benchmark {pid}" in (out / "workload.log").read_text()


def test_shell_that_forks_the_benchmark_holds_the_benchmark(agent, tmp_path, bench_dir):
    out = tmp_path / "run"
    script = f"sleep 0.1; ./{BENCH}; sleep 0.5"
    command = _launcher(agent, BENCH, "sh", "-c", script)
    pid, parent, code, err, released, ended = _run_held(agent, out, command, bench_dir)
    # the benchmark is the shell's child, the shell the launcher's
    assert parent == ("sh", True)
    assert code == 0, err
    _check_measured(out, pid, released, ended, after_s=0.5)


def test_shell_that_execs_the_benchmark_holds_it_in_place(agent, tmp_path, bench_dir):
    out = tmp_path / "run"
    proc = subprocess.Popen(
        _invocation(
            agent, out, _launcher(agent, BENCH, "sh", "-c", f"sleep 0.1; exec ./{BENCH}"), bench_dir
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    pid = _held(out)
    launcher = _launcher_pid(out)
    # the shell became the benchmark: same pid, the launcher's own child, held at that exec
    assert _ppid(pid) == launcher
    assert proc_state(pid) == "t" and proc_comm(pid) == BENCH_COMM
    released = time.monotonic()
    os.kill(proc.pid, signal.SIGUSR1)
    code, _, err = finish(proc)
    assert code == 0, err.decode()
    _check_measured(out, pid, released, time.monotonic(), after_s=0)


RUN_SH = """\
#!/bin/sh
# like SPLASH-2X's run.sh: the binary is started by `eval $RUN`, then the script goes on
TARGET={bench}
NUMPROCS="$1"
INPUTSIZE="$2"
PROG="$(dirname "$0")/${{TARGET}}"
[ -x "$PROG" ] || {{ echo "Error: Binary ${{PROG}} does not exist!"; exit 1; }}
RUN="$PROG -p${{NUMPROCS}} ${{INPUTSIZE}}"
echo "Running $RUN:"
eval $RUN
echo done
sleep 0.5
"""

FAKE_PARSECMGMT = """\
#!/bin/bash
# what parsecmgmt -a run does with -s SUBMIT: eval "SUBMIT run_exec args" in a subshell | tee
submit=$1
eval cmd="\\"${{submit}} {run_exec} 2 simsmall\\""
(eval ${{cmd}} 2>&1) 2>&1 | tee benchmark.out
"""


def test_parsecmgmt_running_a_run_sh_holds_the_binary_it_starts(agent, tmp_path, bench_dir):
    run_sh = _executable(bench_dir / "run.sh", RUN_SH.format(bench=BENCH))
    mgmt = _executable(bench_dir / "parsecmgmt", FAKE_PARSECMGMT.format(run_exec=run_sh))
    out = tmp_path / "run"
    command = (str(mgmt), hold_prefix(str(agent), BENCH))
    pid, parent, code, err, released, ended = _run_held(agent, out, command, bench_dir)
    assert parent[0] == "run.sh", "run.sh forked the benchmark"
    assert code == 0, err
    _check_measured(out, pid, released, ended, after_s=0.5)
    log = (out / "workload.log").read_text()
    assert f"benchmark {pid} -p2 simsmall done" in log
    assert log.rstrip().endswith("done"), "run.sh went on after the benchmark"


def test_parsec3_style_direct_binary_with_its_name(agent, tmp_path, bench_dir):
    """parsec3 packages run bin/<binary> directly: the prefix's NAME checks it is that one."""
    mgmt = _executable(bench_dir / "parsecmgmt", FAKE_PARSECMGMT.format(run_exec=bench_dir / BENCH))
    out = tmp_path / "run"
    command = (str(mgmt), hold_prefix(str(agent), BENCH))
    pid, _, code, err, released, ended = _run_held(agent, out, command, bench_dir)
    assert code == 0, err
    _check_measured(out, pid, released, ended, after_s=0)


SPAWNER = """\
import subprocess, sys, threading, time
# threads (clone events) and a posix_spawn/vfork child in the traced tree
threads = [threading.Thread(target=time.sleep, args=(1.5,)) for _ in range(3)]
for thread in threads:
    thread.start()
subprocess.run(["./{bench}"], check=True)
for thread in threads:
    thread.join()
print("spawner done", flush=True)
"""


def test_a_threaded_spawner_is_let_go_and_the_benchmark_held(agent, tmp_path, bench_dir):
    spawner = bench_dir / "spawner.py"
    spawner.write_text(SPAWNER.format(bench=BENCH))
    out = tmp_path / "run"
    command = _launcher(agent, BENCH, sys.executable, str(spawner))
    pid, parent, code, err, released, ended = _run_held(agent, out, command, bench_dir)
    assert parent == (Path(sys.executable).name[:15], True)
    assert code == 0, err
    _check_measured(out, pid, released, ended, after_s=0)
    assert "spawner done" in (out / "workload.log").read_text()


def test_a_tree_that_never_execs_the_name_is_a_hold_error(agent, tmp_path, bench_dir):
    out = tmp_path / "run"
    command = _launcher(agent, "fft", "sh", "-c", f"sleep 0.1; ./{BENCH}; exit 3")
    started = time.monotonic()
    proc = subprocess.run(
        _invocation(agent, out, command, bench_dir), capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 2, proc.stderr
    # the benchmark was not what the launcher waited for: it ran through, unheld
    assert time.monotonic() - started >= 0.8
    status = load_agent_output(out).status
    assert status.status == "error"
    assert "no process named fft ran under sh" in status.error
    assert f"it exec'd: sh, sleep, {BENCH_COMM}" in status.error
    assert status.command_exit_code == 127
    assert not (out / "target.pid").exists()


def test_the_launcher_exits_127_and_says_so_on_stderr(agent, tmp_path):
    fifo = tmp_path / "hold.fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        proc = subprocess.run(
            [agent, "hold", "--fifo", str(fifo), "--target-comm", "fft", "--", "sh", "-c", "true"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        report = os.read(reader, 4096).decode()
    finally:
        os.close(reader)
    assert proc.returncode == 127
    assert "no process named fft ran under sh (it exec'd: sh)" in proc.stderr
    assert report.startswith("hold-error ") and "no process named fft" in report


def test_signals_reach_the_shell_while_tracing_and_the_benchmark_after_release(
    agent, tmp_path, bench_dir
):
    """Signal-delivery stops are passed on: the shell's trap runs; an abort kills the benchmark
    with the agent's SIGTERM."""
    _executable(bench_dir / BENCH, BENCH_SCRIPT.format(python=sys.executable, seconds=30))
    out = tmp_path / "run"
    fifo = tmp_path / "ctl"
    os.mkfifo(fifo)
    script = f"trap 'echo trapped-usr1' USR1; kill -USR1 $$; ./{BENCH}"
    invocation = AgentInvocation(
        out_dir=str(out),
        command=_launcher(agent, BENCH, "sh", "-c", script),
        hold="child",
        interval_ms=100,
        control=str(fifo),
        agent_path=str(agent),
        cwd=str(bench_dir),
    )
    proc = subprocess.Popen(invocation.argv(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    pid = _held(out)
    with open(fifo, "w") as ctl:
        ctl.write("go\n")
        ctl.flush()
        wait_until(lambda: proc_state(pid) in ("S", "R"), what="release")
        time.sleep(0.3)
        ctl.write("abort\n")
    code, _, err = finish(proc)
    assert code == 1, err.decode()
    assert not alive(pid)
    result = load_agent_output(out)
    assert result.status.status == "aborted" and result.status.signal == signal.SIGTERM
    assert "trapped-usr1" in (out / "workload.log").read_text()


def test_without_target_comm_the_launcher_holds_cmd_itself(agent, tmp_path, bench_dir):
    """The plain prefix is unchanged: it holds what it execs, here the shell."""
    out = tmp_path / "run"
    command = _launcher(agent, None, "sh", "-c", f"./{BENCH}")
    proc = subprocess.Popen(
        _invocation(agent, out, command, bench_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    pid = _held(out)
    assert proc_comm(pid) == "sh" and proc_state(pid) == "t"
    os.kill(proc.pid, signal.SIGUSR1)
    code, _, err = finish(proc)
    assert code == 0, err.decode()
    assert load_agent_output(out).status.target_pid == pid


@pytest.mark.parametrize("name", ["", "a b", "x;rm", "bin/fft", "$(id)"])
def test_hold_prefix_refuses_names_the_shell_would_mangle(name):
    with pytest.raises(ConfigError, match="expected letters, digits"):
        hold_prefix("/opt/de-agent", name)


def test_hold_prefix_with_a_target_name():
    assert hold_prefix("/a/de-agent", "water_nsquared") == (
        "/a/de-agent hold --target-comm water_nsquared --"
    )
    assert hold_prefix("/a/de-agent") == "/a/de-agent hold --"


def test_agent_refuses_a_bad_target_comm(agent):
    proc = subprocess.run(
        [agent, "hold", "--target-comm", "bin/fft", "--", "true"], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "bad --target-comm 'bin/fft'" in proc.stderr
