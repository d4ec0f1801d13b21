"""The QMP client and the control channel against local unix-socket servers."""

from __future__ import annotations

import json
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import pytest

from damon_eval.errors import GuestError
from damon_eval.guest.qmp import QmpClient, QmpError
from damon_eval.machines.control import ControlChannel


@pytest.fixture
def sock_dir():
    # unix socket paths are limited to 108 bytes; pytest's tmp_path can be longer.
    path = Path(tempfile.mkdtemp(prefix="de-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


class FakeQemuMonitor:
    """Speaks enough QMP: greeting, capabilities, scripted answers, events."""

    def __init__(
        self, path: Path, answers: dict[str, list[dict]], before_greeting: bytes = b""
    ) -> None:
        self.path = path
        self.answers = answers
        self.before_greeting = before_greeting
        self.received: list[dict] = []
        self.listener = socket.socket(socket.AF_UNIX)
        self.listener.bind(str(path))
        self.listener.listen(1)
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        with self.listener:
            conn, _ = self.listener.accept()
        with conn:
            conn.sendall(self.before_greeting)
            conn.sendall(b'{"QMP": {"version": {}, "capabilities": []}}\n')
            buffer = b""
            while True:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                buffer += chunk
                while b"\n" in buffer:
                    line, _, buffer = buffer.partition(b"\n")
                    message = json.loads(line)
                    self.received.append(message)
                    name = message["execute"]
                    if name == "qmp_capabilities":
                        conn.sendall(b'{"return": {}}\n')
                        continue
                    replies = self.answers.get(name, [{"return": {}}])
                    reply = replies.pop(0) if len(replies) > 1 else replies[0]
                    if reply.get("silent"):
                        continue
                    conn.sendall(b'{"event": "RESUME", "data": {}}\n')
                    conn.sendall(json.dumps(reply).encode() + b"\n")


def test_qmp_commands_errors_and_events(sock_dir):
    path = sock_dir / "qmp.sock"
    monitor = FakeQemuMonitor(
        path,
        {
            "query-status": [{"return": {"status": "paused", "running": False}}],
            "cont": [{"error": {"class": "GenericError", "desc": "not now"}}],
        },
    )
    with QmpClient.connect(path, timeout_s=5) as qmp:
        assert qmp.command("query-status") == {"status": "paused", "running": False}
        with pytest.raises(QmpError, match="QEMU refused cont: not now"):
            qmp.command("cont")
        qmp.command("migrate", uri="exec:cat > /dev/null")
        assert qmp.wait_event("RESUME", timeout_s=1)["event"] == "RESUME"
    assert monitor.received[0] == {"execute": "qmp_capabilities"}
    assert {"execute": "migrate", "arguments": {"uri": "exec:cat > /dev/null"}} in (
        monitor.received
    )


def test_qmp_event_before_the_greeting_is_kept_as_an_event(sock_dir):
    # seen under TCG: QEMU's start-up RESUME reached a client that connected just then
    path = sock_dir / "qmp.sock"
    FakeQemuMonitor(path, {}, before_greeting=b'{"event": "RESUME", "data": {}}\n')
    with QmpClient.connect(path, timeout_s=5) as qmp:
        assert "QMP" in qmp.greeting
        assert [e["event"] for e in qmp.events] == ["RESUME"]


def test_qmp_other_first_message_is_refused(sock_dir):
    path = sock_dir / "qmp.sock"
    FakeQemuMonitor(path, {}, before_greeting=b'{"return": {}}\n')
    with pytest.raises(QmpError, match="unexpected QMP greeting"):
        QmpClient.connect(path, timeout_s=5)


def test_qmp_unanswered_command_times_out(sock_dir):
    path = sock_dir / "qmp.sock"
    FakeQemuMonitor(path, {"quit": [{"silent": True}]})
    with QmpClient.connect(path, timeout_s=5) as qmp:
        started = time.monotonic()
        with pytest.raises(QmpError, match="did not answer"):
            qmp.command("quit", timeout_s=0.5)
        assert time.monotonic() - started < 3


def test_qmp_connect_gives_up_when_qemu_is_dead(sock_dir):
    path = sock_dir / "never.sock"
    started = time.monotonic()
    with pytest.raises(QmpError, match="exited before its monitor"):
        QmpClient.connect(path, timeout_s=30, alive=lambda: False)
    assert time.monotonic() - started < 2
    with pytest.raises(QmpError, match="did not accept connections"):
        QmpClient.connect(path, timeout_s=0.3)


@pytest.fixture
def control_pair(sock_dir):
    path = sock_dir / "ctl.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))
    listener.listen(1)
    accepted: dict[str, socket.socket] = {}

    def accept():
        accepted["guest"], _ = listener.accept()

    thread = threading.Thread(target=accept)
    thread.start()
    channel = ControlChannel.connect(path, timeout_s=5, guest_name="g1")
    thread.join(5)
    yield channel, accepted["guest"]
    channel.close()
    accepted["guest"].close()
    listener.close()


def test_control_lines_both_ways(control_pair):
    channel, guest_end = control_pair
    channel.send_line("go")
    assert guest_end.recv(100) == b"go\n"
    guest_end.sendall(b"ready\r\ndone 12.5\npart")
    assert channel.read_line(timeout_s=2) == "ready"
    assert channel.read_line(timeout_s=2) == "done 12.5"
    with pytest.raises(GuestError, match=r"no line from g1.*partial: b'part'"):
        channel.read_line(timeout_s=0.2)
    guest_end.sendall(b"ial\n")
    assert channel.read_line(timeout_s=2) == "partial"


def test_control_channel_close_is_reported(control_pair):
    channel, guest_end = control_pair
    guest_end.close()
    with pytest.raises(GuestError, match="closed"):
        channel.read_line(timeout_s=2)


def test_control_lines_are_single_lines(control_pair):
    channel, _ = control_pair
    with pytest.raises(GuestError, match="single lines"):
        channel.send_line("a\nb")
