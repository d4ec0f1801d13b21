"""Parsing de-agent's files and computing run metrics, on fixture files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from damon_eval.agent.build import AgentError, compile_command, guest_build_script
from damon_eval.agent.protocol import AgentInvocation, format_go, hold_prefix, parse_message
from damon_eval.errors import ConfigError
from damon_eval.measure.samples import (
    AgentOutputError,
    compute_metrics,
    load_agent_output,
    parse_runtime,
    parse_samples_csv,
    parse_status,
)
from damon_eval.metrics import METRICS

FIXTURES = Path(__file__).parent / "fixtures" / "agent"


def test_load_agent_output_of_a_scheme_run():
    result = load_agent_output(FIXTURES)
    assert result.status.ok and result.status.target_pid == 4242
    assert result.runtime_s == 3.5
    samples = result.samples.samples
    assert len(samples) == 5 == result.status.nr_samples
    assert samples[2].schemes[1].sz_applied == 4096
    assert samples[0].damos.nr_tried == 0 and samples[0].kdamond_pid == 516
    assert result.samples.rows[1][:3] == (1.0, 900000, 2000000)


def test_metrics_of_a_scheme_run():
    result = load_agent_output(FIXTURES)
    metrics = compute_metrics(result.samples.samples, result.runtime_s)
    assert metrics == {
        "runtime": 3.5,
        # (0 + 100000 + 199999 + 300000 - 3) / 5 = 119999.2, truncated
        "memused.avg": 119999,
        "memused_abs.avg": 1119999,
        # only samples while the workload had processes: (90000 + 190000 + 180000) / 3
        "rss.avg": 153333,
        "rss.max": 190000,
        "anon_huge.avg": 1638,
        "anon_huge.max": 4096,
        "pswpin": 5,
        "pswpout": 41,
        "pgmajfault": 11,
        # 7 ticks at 100 Hz over 3.5 s
        "kdamond_cpu_util": 2.0,
        "damos.nr_tried": 12,
        "damos.sz_tried": 20480,
        "damos.nr_applied": 7,
        "damos.sz_applied": 16384,
        "damos.qt_exceeds": 1,
        "harness_rss.max": 188,
    }
    assert set(metrics) <= set(METRICS)


def test_metrics_without_damon_leave_damon_metrics_out():
    table = parse_samples_csv((FIXTURES / "samples_orig.csv").read_text())
    metrics = compute_metrics(table.samples, 2.0)
    assert "kdamond_cpu_util" not in metrics
    assert not any(name.startswith("damos.") for name in metrics)
    # MemFree grew: -7/3 truncates toward zero like damon-tests' shell arithmetic
    assert metrics["memused.avg"] == -2
    assert metrics["rss.avg"] == 500
    assert table.samples[0].kdamond_pid is None and table.samples[0].damos is None


def test_metrics_of_no_samples_is_runtime_only():
    assert compute_metrics([], 1.25) == {"runtime": 1.25}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("t_s,memfree\n0,1\n", "does not start with the expected columns"),
        ((FIXTURES / "samples_orig.csv").read_text() + "4.0,1\n", "has 2 fields"),
        (
            (FIXTURES / "samples_orig.csv").read_text().replace("1.000,1003", "1.000,x"),
            "column memfree_kib has 'x'",
        ),
    ],
)
def test_malformed_samples_are_rejected(text, message):
    with pytest.raises(AgentOutputError, match=message):
        parse_samples_csv(text)


def test_status_and_runtime_parsing():
    status = parse_status("status=timeout\nruntime_s=2.5\nerror=timeout after 2 s\n")
    assert status.status == "timeout" and not status.ok and status.error == "timeout after 2 s"
    assert status.exit_code is None
    with pytest.raises(AgentOutputError, match=r"status='weird'; valid: ok, failed"):
        parse_status("status=weird\n")
    with pytest.raises(AgentOutputError, match="not key=value"):
        parse_status("status ok\n")
    assert parse_runtime("12.5\n") == 12.5
    with pytest.raises(AgentOutputError, match="not seconds"):
        parse_runtime("soon")


def test_missing_status_means_unfinished(tmp_path):
    shutil.copy(FIXTURES / "samples.csv", tmp_path)
    with pytest.raises(AgentOutputError, match="did not finish"):
        load_agent_output(tmp_path)


def test_protocol_messages():
    assert parse_message("ready 123\n").pid == 123
    done = parse_message("done ok 12.500000")
    assert (done.status, done.runtime_s) == ("ok", 12.5)
    assert parse_message("error exec foo: No such file").error == "exec foo: No such file"
    with pytest.raises(AgentError, match="unknown agent message"):
        parse_message("hello")
    with pytest.raises(AgentError, match="malformed"):
        parse_message("ready abc")
    assert format_go() == "go"
    assert format_go(kdamond_dir="/sys/kernel/mm/damon/admin/kdamonds/0", timeout_s=60) == (
        "go kdamond_dir=/sys/kernel/mm/damon/admin/kdamonds/0 timeout_s=60"
    )
    with pytest.raises(ConfigError, match="unknown go parameter 'speed'; valid: kdamond_dir"):
        format_go(speed=1)
    with pytest.raises(ConfigError, match="without spaces"):
        format_go(record="/a b")


def test_invocation_command_line():
    invocation = AgentInvocation(
        out_dir="/var/tmp/run",
        command=("parsecmgmt", "-a", "run", "-s", hold_prefix()),
        hold="child",
        control="/dev/virtio-ports/org.damon-eval.ctl",
        timeout_s=3600,
        kdamond_dir="/sys/kernel/mm/damon/admin/kdamonds/0",
        trace_pipe="/sys/kernel/tracing/instances/de/trace_pipe",
        record="/var/tmp/run/trace.txt",
        drop_caches=True,
        detach=True,
    )
    argv = invocation.argv()
    assert argv[:2] == ["/opt/damon-eval/bin/de-agent", "run"]
    assert argv[argv.index("--hold") + 1] == "child"
    assert argv[argv.index("--timeout-s") + 1] == "3600"
    assert "--drop-caches" in argv and "--detach" in argv
    assert argv[argv.index("--") + 1 :] == list(invocation.command)
    assert "'/opt/damon-eval/bin/de-agent hold --'" in invocation.shell()
    with pytest.raises(ConfigError, match="hold mode 'later' is not one of exec, child, none"):
        AgentInvocation(out_dir="/x", command=("true",), hold="later")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="without trace_pipe"):
        AgentInvocation(out_dir="/x", command=("true",), record="/r")


def test_build_commands():
    assert compile_command("a.c", "a", cc="musl-gcc") == [
        "musl-gcc",
        "-std=c11",
        "-O2",
        "-Wall",
        "-Wextra",
        "-Werror",
        "-static",
        "-o",
        "a",
        "a.c",
    ]
    assert "-static" not in compile_command("a.c", "a", static=False)
    script = guest_build_script()
    assert "command -v musl-gcc" in script
    assert "-std=c11 -O2 -Wall -Wextra -Werror -static -o /opt/damon-eval/bin/de-agent" in script
    assert "WITHOUT -Werror" in script


def test_agent_control_over_a_unix_socket(tmp_path):
    """The host end as QEMU exposes the virtio port: a unix socket carrying lines."""
    import socket
    import threading

    from damon_eval.agent.build import AgentTimeout
    from damon_eval.agent.protocol import AgentControl
    from damon_eval.errors import GuestError

    path = tmp_path / "ctl.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    got: list[bytes] = []

    def fake_agent() -> None:
        conn, _ = server.accept()
        conn.sendall(b"ready 42\n")
        got.append(conn.recv(100))
        conn.sendall(b"started 42\ndone ok 1.5\n")
        got.append(conn.recv(100))  # the host's ping stays unanswered
        got.append(conn.recv(100))  # then the host aborts and the agent hangs up
        conn.close()

    thread = threading.Thread(target=fake_agent)
    thread.start()
    control = AgentControl.connect_unix(path, timeout_s=5)
    try:
        assert control.wait_for(["ready"], 5).pid == 42
        control.go(kdamond_dir="/sys/kernel/mm/damon/admin/kdamonds/0")
        done = control.wait_for(["done"], 5)
        assert (done.status, done.runtime_s) == ("ok", 1.5)
        assert [m.kind for m in control.received] == ["ready", "started", "done"]
        control.ping()
        with pytest.raises(AgentTimeout, match="no pong message"):
            control.wait_for(["pong"], 0.2)
        control.abort()
        thread.join()
        with pytest.raises(GuestError, match="closed"):
            control.wait_for(["pong"], 5)
    finally:
        control.close()
        thread.join()
        server.close()
    assert got == [
        b"go kdamond_dir=/sys/kernel/mm/damon/admin/kdamonds/0\n",
        b"ping\n",
        b"abort\n",
    ]
    with pytest.raises(AgentError, match="cannot connect"):
        AgentControl.connect_unix(tmp_path / "absent.sock", timeout_s=0.2)


def test_samples_and_metrics_fit_the_result_schema():
    import json

    import jsonschema

    from damon_eval.paths import DATA_DIR

    schema = json.loads((DATA_DIR / "schemas" / "result.schema.json").read_text())
    result = load_agent_output(FIXTURES)
    samples = json.loads(json.dumps(result.samples.to_json(1.0)))
    jsonschema.validate(samples, schema["properties"]["samples"])
    metrics = compute_metrics(result.samples.samples, result.runtime_s)
    jsonschema.validate(metrics, schema["properties"]["metrics"])
    assert samples["columns"][0] == "t_s" and len(samples["rows"]) == 5
