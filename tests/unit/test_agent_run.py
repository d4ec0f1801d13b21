"""de-agent, compiled with this host's compiler and run for real (no DAMON needed).

Each test launches a real workload under the agent and checks what the guest
would rely on: the hold at exec, release by FIFO / pty / SIGUSR1, runtime,
samples, process-tree RSS, timeouts, exit statuses, the parsecmgmt-style
``hold`` launcher, DAMOS stats from a fake kdamond directory and trace
streaming from a FIFO standing in for trace_pipe.
"""

from __future__ import annotations

import os
import pty
import shutil
import signal
import stat
import subprocess
import sys
import termios
import textwrap
import threading
import time
import tty
from pathlib import Path

import pytest
from agent_helpers import (
    alive,
    events,
    finish,
    need_compiler,
    proc_comm,
    proc_state,
    read_pid_file,
    sent,
    start_agent,
    wait_until,
)

from damon_eval.agent.build import (
    build_agent_locally,
    compile_command,
    guest_build_script,
    local_compilers,
)
from damon_eval.agent.protocol import AgentControl, AgentInvocation, hold_prefix
from damon_eval.damon.tracing import record_lines
from damon_eval.measure.samples import compute_metrics, load_agent_output

PY = sys.executable


@pytest.fixture(scope="module")
def agent(tmp_path_factory) -> Path:
    need_compiler()
    return build_agent_locally(tmp_path_factory.mktemp("agent-build"))


def _held(out: Path) -> int:
    pid = wait_until(lambda: read_pid_file(out / "target.pid"), what="target.pid")
    assert isinstance(pid, int)
    return pid


def _run_args(out: Path, *extra: str) -> list[str]:
    return ["run", "--out", str(out), "--interval-ms", "100", *extra]


@pytest.mark.parametrize("static", [True, False], ids=["static", "dynamic"])
def test_agent_builds_warning_free_with_each_compiler(tmp_path, static):
    need_compiler()
    for cc in local_compilers():
        output = tmp_path / f"de-agent-{cc}-{static}"
        proc = subprocess.run(
            compile_command(
                Path(__file__).parents[2] / "damon_eval/data/agent/de-agent.c",
                output,
                cc=cc,
                static=static,
            ),
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stderr
        version = subprocess.run([output, "--version"], capture_output=True, text=True)
        assert version.stdout.startswith("de-agent ")


def test_held_at_exec_until_sigusr1(agent, tmp_path):
    out = tmp_path / "run"
    proc = start_agent(agent, _run_args(out, "--", "sleep", "0.5"))
    pid = _held(out)
    # stopped by the tracer, already the new image, and it stays so
    assert proc_state(pid) == "t"
    assert proc_comm(pid) == "sleep"
    time.sleep(0.5)
    assert proc_state(pid) == "t"
    assert sent(out) == [f"ready {pid}"]
    released = time.monotonic()
    os.kill(proc.pid, signal.SIGUSR1)
    code, _, err = finish(proc)
    ended = time.monotonic()
    assert code == 0, err
    result = load_agent_output(out)
    assert result.status.status == "ok" and result.status.exit_code == 0
    assert result.status.target_pid == pid
    # runtime counts from release (same CLOCK_MONOTONIC): the 0.5 s held do not count
    assert released <= result.status.release_mono_s
    assert 0.5 <= result.runtime_s <= ended - released
    assert result.status.runtime_s == pytest.approx(result.runtime_s)
    t = [s.t_s for s in result.samples.samples]
    assert t[0] == 0.0 and t[-1] == pytest.approx(result.runtime_s, abs=0.01)
    assert len(t) >= 5, "a sample every 100 ms over 0.5 s"
    assert sent(out)[-1].startswith("done ok ")


def test_release_through_fifo_control(agent, tmp_path):
    out = tmp_path / "run"
    fifo = tmp_path / "ctl"
    os.mkfifo(fifo)
    proc = start_agent(agent, _run_args(out, "--control", str(fifo), "--", "true"))
    pid = _held(out)
    assert proc_state(pid) == "t"
    with open(fifo, "w") as ctl:
        ctl.write("ping\nbogus\ngo interval_ms=50\n")
    code, _, err = finish(proc)
    assert code == 0, err
    received = [text for d, text in events(out) if d == "<"]
    assert received == ["ping", "bogus", "go interval_ms=50"]
    messages = sent(out)
    assert messages[0] == f"ready {pid}"
    assert messages[1] == f"pong held {pid}"
    assert messages[2].startswith("error unknown command 'bogus'")
    assert messages[3] == f"started {pid}"
    assert messages[-1].startswith("done ok")


def _pty_pair() -> tuple[int, str]:
    master, slave = pty.openpty()
    tty.setraw(slave)
    attrs = termios.tcgetattr(slave)
    attrs[3] &= ~termios.ECHO
    termios.tcsetattr(slave, termios.TCSANOW, attrs)
    path = os.ttyname(slave)
    os.close(slave)
    return master, path


def test_bidirectional_protocol_over_a_character_device(agent, tmp_path):
    """A pty is a character device like the virtio-serial port: messages both ways."""
    master, slave_path = _pty_pair()
    out = tmp_path / "run"
    proc = start_agent(agent, _run_args(out, "--control", slave_path, "--", "sleep", "0.3"))
    try:
        control = AgentControl.over_fds(master, master)
        ready = control.wait_for(["ready"], 10)
        assert proc_state(ready.pid) == "t"
        control.ping()
        assert control.wait_for(["pong"], 5).args == ("held", str(ready.pid))
        control.send("go bad_key=1")
        with pytest.raises(Exception, match="unknown go parameter 'bad_key'"):
            control.wait_for(["started"], 5)
        assert proc_state(ready.pid) == "t", "a refused go does not release"
        control.go(interval_ms=100)
        assert control.wait_for(["started"], 5).pid == ready.pid
        done = control.wait_for(["done"], 10)
        assert done.status == "ok"
        assert 0.3 <= done.runtime_s < 5
    finally:
        if proc.poll() is None and not (out / "status").exists():
            time.sleep(2)
            proc.terminate()
        code, _, err = finish(proc)
        os.close(master)
    assert code == 0, err
    assert load_agent_output(out).runtime_s == pytest.approx(done.runtime_s, abs=1e-5)


def test_rss_of_the_whole_process_tree(agent, tmp_path):
    out = tmp_path / "run"
    script = textwrap.dedent(
        """
        import os, time
        def touch(n):
            b = bytearray(n)
            for i in range(0, n, 4096):
                b[i] = 1
            return b
        pid = os.fork()
        if pid == 0:
            child = touch(64 << 20)
            time.sleep(1.2)
            os._exit(0)
        parent = touch(32 << 20)
        time.sleep(1.2)
        os.waitpid(pid, 0)
        """
    )
    proc = start_agent(agent, _run_args(out, "--hold", "none", "--", PY, "-c", script))
    code, _, err = finish(proc)
    assert code == 0, err
    result = load_agent_output(out)
    samples = result.samples.samples
    assert max(s.nr_procs for s in samples) == 2
    # 96 MiB touched in two processes; the interpreter adds a few MiB each
    assert max(s.rss_tree_kib for s in samples) >= 96 * 1024
    assert max(s.rss_tree_kib for s in samples) < 160 * 1024
    metrics = compute_metrics(samples, result.runtime_s)
    assert metrics["rss.max"] >= 96 * 1024
    assert 1.2 <= metrics["runtime"] < 10


def test_timeout_kills_the_process_group_and_orphans(agent, tmp_path):
    out = tmp_path / "run"
    pids = tmp_path / "pids"
    # a background child that detaches into its own session still dies
    script = f"sleep 60 & echo $! > {pids}; setsid sleep 60 & echo $! >> {pids}; wait"
    started = time.monotonic()
    proc = start_agent(
        agent, _run_args(out, "--hold", "none", "--timeout-s", "1", "--", "sh", "-c", script)
    )
    code, _, err = finish(proc)
    assert time.monotonic() - started < 8
    assert code == 1, err
    result = load_agent_output(out)
    assert result.status.status == "timeout"
    assert "timeout after 1 s" in result.status.error
    for pid in map(int, pids.read_text().split()):
        wait_until(lambda pid=pid: not alive(pid), 5, f"pid {pid} to die")
    assert sent(out)[-1].startswith("done timeout")


@pytest.mark.parametrize(
    ("script", "status", "code_key", "value"),
    [("exit 3", "failed", "exit_code", 3), ("kill -9 $$", "killed", "signal", 9)],
)
def test_exit_status_propagates(agent, tmp_path, script, status, code_key, value):
    out = tmp_path / "run"
    proc = start_agent(agent, _run_args(out, "--hold", "exec", "--", "sh", "-c", script))
    _held(out)
    os.kill(proc.pid, signal.SIGUSR1)
    code, _, err = finish(proc)
    assert code == 1, err
    result = load_agent_output(out)
    assert result.status.status == status
    assert getattr(result.status, code_key) == value


def test_missing_binary_is_a_harness_error(agent, tmp_path):
    out = tmp_path / "run"
    proc = start_agent(agent, _run_args(out, "--", "/nonexistent/benchmark", "-x"))
    code, _, err = finish(proc)
    assert code == 2, err
    status = load_agent_output(out).status
    assert status.status == "error"
    assert "exec /nonexistent/benchmark: No such file or directory" in status.error
    assert not (out / "runtime").exists()
    assert sent(out)[0].startswith("error exec /nonexistent/benchmark")
    assert sent(out)[-1] == "done error 0.000000"


def test_sigterm_to_agent_kills_the_workload_and_finishes_files(agent, tmp_path):
    out = tmp_path / "run"
    proc = start_agent(agent, _run_args(out, "--", "sleep", "60"))
    pid = _held(out)
    os.kill(proc.pid, signal.SIGUSR1)
    wait_until(lambda: proc_state(pid) in ("S", "R"), what="release")
    time.sleep(0.3)
    os.kill(proc.pid, signal.SIGTERM)
    code, _, err = finish(proc)
    assert code == 1, err
    assert not alive(pid)
    result = load_agent_output(out)
    assert result.status.status == "aborted"
    assert result.samples.samples, "samples up to the abort are kept"


def test_abort_while_held_and_wait_timeout(agent, tmp_path):
    out = tmp_path / "run"
    proc = start_agent(agent, _run_args(out, "--wait-timeout-s", "0.5", "--", "sleep", "60"))
    pid = _held(out)
    code, _, err = finish(proc)
    assert code == 2, err
    assert not alive(pid)
    status = load_agent_output(out).status
    assert status.status == "error"
    assert "no go from the host" in status.error


def test_detach_returns_at_once(agent, tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run(
        [agent, *_run_args(out, "--detach", "--", "sleep", "0.2")],
        capture_output=True,
        text=True,
        timeout=5,
    )
    agent_pid = int(proc.stdout)
    _held(out)
    os.kill(agent_pid, signal.SIGUSR1)
    wait_until(lambda: (out / "status").exists(), what="status")
    assert load_agent_output(out).status.ok


FAKE_PARSECMGMT = """\
#!/bin/bash
# Fake parsecmgmt: honours -a build|run -p PKG -i INPUT -n THREADS -s SUBMIT like the real one,
# including `eval` of "SUBMIT BINARY ARGS" in a subshell piped through tee.
action= pkg= input=test threads=1 submit=
while [ $# -gt 0 ]; do
  case "$1" in
    -a) action=$2; shift 2;;
    -p) pkg=$2; shift 2;;
    -i) input=$2; shift 2;;
    -n) threads=$2; shift 2;;
    -s) submit=$2; shift 2;;
    *) echo "[PARSEC] Error: unknown option $1"; exit 1;;
  esac
done
here=$(cd "$(dirname "$0")/.." && pwd)
case "$action" in
  build) echo "[PARSEC] building $pkg"; mkdir -p "$here/built"; touch "$here/built/$pkg";;
  run)
    [ -e "$here/built/$pkg" ] || { echo "[PARSEC] Error: $pkg not built"; exit 1; }
    echo "[PARSEC] Running $pkg input $input threads $threads"
    bmexec="$here/bench.py"
    eval cmd="\\"${submit} ${bmexec} ${threads} ${input}\\""
    (eval ${cmd} 2>&1) 2>&1 | tee "$here/benchmark.out"
    sleep 0.2
    echo "[PARSEC] Done.";;
  *) echo "[PARSEC] Error: Unknown action '$action'."; exit 1;;
esac
"""

FAKE_BENCHMARK = """\
#!{python}
import os, sys, time
threads, size = int(sys.argv[1]), sys.argv[2]
pid = os.fork()
if pid == 0:
    extra = bytearray(16 << 20)
    for i in range(0, len(extra), 4096):
        extra[i] = 1
    time.sleep(0.8)
    os._exit(0)
data = bytearray(48 << 20)
for i in range(0, len(data), 4096):
    data[i] = 1
time.sleep(1.0)
os.waitpid(pid, 0)
print("benchmark", threads, size, "done")
"""


@pytest.fixture
def fake_parsec(tmp_path) -> Path:
    root = tmp_path / "parsec-3.0"
    (root / "bin").mkdir(parents=True)
    mgmt = root / "bin" / "parsecmgmt"
    mgmt.write_text(FAKE_PARSECMGMT)
    bench = root / "bench.py"
    bench.write_text(FAKE_BENCHMARK.format(python=PY))
    for path in (mgmt, bench):
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    subprocess.run([mgmt, "-a", "build", "-p", "blackscholes"], check=True, capture_output=True)
    return root


def test_parsecmgmt_submit_prefix_holds_the_benchmark_itself(agent, tmp_path, fake_parsec):
    out = tmp_path / "run"
    command = (
        f"{fake_parsec}/bin/parsecmgmt",
        *("-a", "run", "-p", "blackscholes", "-i", "simsmall", "-n", "2"),
        *("-s", hold_prefix(str(agent))),
    )
    invocation = AgentInvocation(
        out_dir=str(out), command=command, hold="child", interval_ms=100, agent_path=str(agent)
    )
    proc = subprocess.Popen(invocation.argv(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    pid = _held(out)
    # the held process is the benchmark (not parsecmgmt, not the launcher), stopped at exec
    assert proc_state(pid) == "t"
    assert "bench.py" in Path(f"/proc/{pid}/cmdline").read_text()
    time.sleep(0.3)
    assert proc_state(pid) == "t"
    released = time.monotonic()
    os.kill(proc.pid, signal.SIGUSR1)
    code, _, err = finish(proc)
    ended = time.monotonic()
    assert code == 0, err.decode()
    result = load_agent_output(out)
    assert result.status.ok and result.status.target_pid == pid
    assert result.status.command_exit_code == 0
    # runtime of the benchmark alone: from release, without parsecmgmt's extra 0.2 s after it
    assert released <= result.status.release_mono_s
    assert 1.0 <= result.runtime_s <= ended - released - 0.2
    samples = result.samples.samples
    # the benchmark and its child (48 + 16 MiB) are counted; parsecmgmt/tee are not
    assert max(s.nr_procs for s in samples) == 2
    assert 64 * 1024 <= max(s.rss_tree_kib for s in samples) < 100 * 1024
    log = (out / "workload.log").read_text()
    assert "benchmark 2 simsmall done" in log and "[PARSEC] Done." in log
    # the launcher is counted as harness memory
    assert max(s.agent_rss_kib for s in samples) > 0


def test_hold_mode_reports_a_parsecmgmt_that_never_holds(agent, tmp_path):
    out = tmp_path / "run"
    proc = start_agent(agent, _run_args(out, "--hold", "child", "--", "sh", "-c", "exit 0"))
    code, _, _ = finish(proc)
    assert code == 2
    assert "held process" in load_agent_output(out).status.error


def test_hold_launcher_without_agent_runs_unheld(agent, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DE_AGENT_HOLD_FIFO"}
    proc = subprocess.run(
        [agent, "hold", "--", "sh", "-c", "exit 5"], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 5
    assert "running sh unheld" in proc.stderr


def _fake_kdamond(root: Path, kdamond_pid: int) -> Path:
    kd = root / "kdamonds" / "0"
    (kd / "contexts/0/schemes").mkdir(parents=True)
    (kd / "pid").write_text(f"{kdamond_pid}\n")
    (kd / "state").write_text("on\n")
    (kd / "contexts/0/schemes/nr_schemes").write_text("2\n")
    for scheme, base in ((0, 10), (1, 1000)):
        stats = kd / f"contexts/0/schemes/{scheme}/stats"
        stats.mkdir(parents=True)
        for i, name in enumerate(
            ("nr_tried", "sz_tried", "nr_applied", "sz_applied", "qt_exceeds")
        ):
            (stats / name).write_text(f"{base + i}\n")
    return kd


def _ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def test_damos_stats_and_kdamond_cpu_from_a_fake_kdamond_dir(agent, tmp_path):
    # a busy process stands in for the kdamond thread: its CPU ticks must show
    busy = subprocess.Popen([PY, "-c", "import time\nt=time.time()\nwhile time.time()-t<3: pass"])
    try:
        kd = _fake_kdamond(tmp_path / "sysfs", busy.pid)
        out = tmp_path / "run"
        fifo = tmp_path / "ctl"
        os.mkfifo(fifo)
        proc = start_agent(agent, _run_args(out, "--control", str(fifo), "--", "sleep", "1.2"))
        _held(out)
        ticks_before = _ticks(busy.pid)
        with open(fifo, "w") as ctl:
            ctl.write(f"go kdamond_dir={kd}\n")

        def bump() -> None:
            time.sleep(0.5)
            (kd / "contexts/0/schemes/1/stats/sz_applied").write_text("987654321\n")

        thread = threading.Thread(target=bump)
        thread.start()
        code, _, err = finish(proc)
        thread.join()
        ticks_after = _ticks(busy.pid)
    finally:
        busy.kill()
        busy.wait()
    assert code == 0, err
    # the agent asked the kernel for fresh stats (the fake file keeps the last write)
    assert (kd / "state").read_text() == "update_schemes_stats"
    result = load_agent_output(out)
    first, last = result.samples.samples[0], result.samples.samples[-1]
    assert first.kdamond_pid == busy.pid
    assert first.damos.nr_tried == 10 + 1000
    assert last.schemes[1].sz_applied == 987654321
    assert last.damos.sz_applied == 13 + 987654321
    assert result.samples.columns[-5:] == (
        "s1_nr_tried",
        "s1_sz_tried",
        "s1_nr_applied",
        "s1_sz_applied",
        "s1_qt_exceeds",
    )
    metrics = compute_metrics(result.samples.samples, result.runtime_s)
    assert metrics["damos.sz_applied"] == 13 + 987654321
    # the ticks are the stand-in's utime+stime, read while it ran
    assert ticks_before <= first.kdamond_cpu_ticks <= last.kdamond_cpu_ticks <= ticks_after
    assert last.kdamond_cpu_ticks > first.kdamond_cpu_ticks
    # a busy loop is up to 100 % of one CPU (less on a loaded machine)
    assert 1 <= metrics["kdamond_cpu_util"] <= 110


def test_trace_pipe_is_streamed_raw_to_the_record(agent, tmp_path):
    trace_pipe = tmp_path / "trace_pipe"
    os.mkfifo(trace_pipe)
    record = tmp_path / "record.txt"
    out = tmp_path / "run"
    lines = [
        f"kdamond.0-516 [001] ..... {41.75 + i / 1000:.6f}: damon_aggregated: target_id=0 "
        f"nr_regions=18 {140398567211008 + i * 4096}-140398583341056: {i % 20} {i}\n"
        for i in range(5000)
    ]
    proc = start_agent(
        agent,
        _run_args(
            out, "--trace-pipe", str(trace_pipe), "--record", str(record), "--", "sleep", "1"
        ),
    )
    _held(out)

    def produce() -> None:
        with open(trace_pipe, "w") as pipe:  # opens once the agent reads (at release)
            for i in range(0, len(lines), 500):
                pipe.write("".join(lines[i : i + 500]))
                pipe.flush()
                time.sleep(0.05)

    writer = threading.Thread(target=produce)
    writer.start()
    os.kill(proc.pid, signal.SIGUSR1)
    code, _, err = finish(proc)
    writer.join()
    assert code == 0, err
    assert record.read_text() == "".join(lines)
    assert load_agent_output(out).status.record_bytes == record.stat().st_size
    # the host converts the raw record with the controller's converter
    with record.open() as raw:
        stats = record_lines(raw, tmp_path / "record.perf_script")
    assert stats.nr_events == len(lines) and stats.nr_skipped_lines == 0
    first = (tmp_path / "record.perf_script").read_text().splitlines()[0]
    assert first.endswith(
        "damon:damon_aggregated: target_id=0 nr_regions=18 140398567211008-140398583341056: 0 0"
    )


@pytest.mark.parametrize("cc", ["musl-gcc", "gcc"])
def test_agent_resident_memory_stays_under_one_mebibyte(cc, tmp_path):
    """The agent's own VmRSS (sampled by itself) over a run with a 100 MiB workload."""
    if not shutil.which(cc):
        pytest.skip(f"{cc} is not installed on this host")
    agent = build_agent_locally(tmp_path / "build", cc=cc, static=True)
    out = tmp_path / "run"
    script = "b = bytearray(100 << 20)\nimport time\ntime.sleep(1)"
    proc = start_agent(agent, _run_args(out, "--hold", "none", "--", PY, "-c", script))
    code, _, err = finish(proc)
    assert code == 0, err
    samples = load_agent_output(out).samples.samples
    agent_rss = max(s.agent_rss_kib for s in samples)
    print(f"de-agent ({cc} -static) max VmRSS: {agent_rss} KiB")
    assert 0 < agent_rss < 1024
    if cc == "musl-gcc":
        assert agent_rss < 400, "the musl build should stay at a few hundred KiB"


def test_guest_build_script_builds_a_working_agent(tmp_path):
    need_compiler()
    source = Path(__file__).parents[2] / "damon_eval/data/agent/de-agent.c"
    output = tmp_path / "bin" / "de-agent"
    proc = subprocess.run(
        ["sh", "-c", guest_build_script(str(source), str(output))], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert "de-agent built with" in proc.stdout
    assert subprocess.run([output, "--version"], capture_output=True, text=True).returncode == 0


def test_guest_build_script_falls_back_when_a_newer_compiler_warns(tmp_path):
    need_compiler()
    source = tmp_path / "de-agent.c"
    original = Path(__file__).parents[2] / "damon_eval/data/agent/de-agent.c"
    # an unused static function: a warning, so an error under -Werror
    source.write_text(original.read_text() + "\nstatic int unused_helper(void) { return 0; }\n")
    output = tmp_path / "bin" / "de-agent"
    proc = subprocess.run(
        ["sh", "-c", guest_build_script(str(source), str(output))], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert "WITHOUT -Werror" in proc.stdout
    assert "unused_helper" in proc.stderr
    assert subprocess.run([output, "--version"], capture_output=True).returncode == 0


def test_abort_from_the_host_while_running(agent, tmp_path):
    out = tmp_path / "run"
    fifo = tmp_path / "ctl"
    os.mkfifo(fifo)
    proc = start_agent(agent, _run_args(out, "--control", str(fifo), "--", "sleep", "60"))
    pid = _held(out)
    with open(fifo, "w") as ctl:
        ctl.write("go\n")
        ctl.flush()
        wait_until(lambda: proc_state(pid) in ("S", "R"), what="release")
        ctl.write("abort\n")
    code, _, err = finish(proc)
    assert code == 1, err
    assert not alive(pid)
    result = load_agent_output(out)
    assert result.status.status == "aborted" and result.status.signal == signal.SIGTERM
    assert sent(out)[-1].startswith("done aborted ")


def test_agent_memory_is_flat_over_many_samples(agent, tmp_path):
    """No allocation per sample: VmRSS barely moves over 300 samples.

    Two pages of slack: a code path first taken late (the final sample) may
    fault in a page of text; a per-sample leak of even 64 bytes would add
    about 19 KiB over 300 samples and still fail.
    """
    out = tmp_path / "run"
    proc = start_agent(
        agent, _run_args(out, "--hold", "none", "--interval-ms", "10", "--", "sleep", "3.5")
    )
    code, _, err = finish(proc)
    assert code == 0, err
    samples = load_agent_output(out).samples.samples
    assert len(samples) > 150
    early = max(s.agent_rss_kib for s in samples[5:20])
    late = max(s.agent_rss_kib for s in samples[-20:])
    assert late - early <= 8, (early, late)


def test_hold_launcher_reports_a_benchmark_that_cannot_start(agent, tmp_path):
    out = tmp_path / "run"
    script = f"{agent} hold -- /nonexistent/benchmark; sleep 30"
    started = time.monotonic()
    proc = start_agent(agent, _run_args(out, "--hold", "child", "--", "sh", "-c", script))
    code, _, _ = finish(proc)
    assert time.monotonic() - started < 10, "the wrapper is killed, not waited for"
    assert code == 2
    status = load_agent_output(out).status
    assert status.status == "error"
    assert "exec /nonexistent/benchmark: No such file or directory" in status.error


def test_kdamond_without_schemes_is_not_asked_for_stats(agent, tmp_path):
    """rec/prec: CPU time is sampled, DAMOS columns stay empty, `state` is never written."""
    kd = _fake_kdamond(tmp_path / "sysfs", os.getpid())
    (kd / "contexts/0/schemes/nr_schemes").write_text("0\n")
    out = tmp_path / "run"
    proc = start_agent(
        agent, _run_args(out, "--hold", "none", "--kdamond-dir", str(kd), "--", "sleep", "0.5")
    )
    code, _, err = finish(proc)
    assert code == 0, err
    assert (kd / "state").read_text() == "on\n"
    result = load_agent_output(out)
    assert all(s.kdamond_pid == os.getpid() and s.damos is None for s in result.samples.samples)
    metrics = compute_metrics(result.samples.samples, result.runtime_s)
    assert "kdamond_cpu_util" in metrics
    assert not any(name.startswith("damos.") for name in metrics)
