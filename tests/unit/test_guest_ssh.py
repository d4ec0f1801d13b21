"""SSH host-key pinning and command execution against a local paramiko server."""

from __future__ import annotations

import io
import os
import socket
import stat
import threading
import time
from pathlib import Path

import paramiko
import pytest

from damon_eval.errors import GuestError
from damon_eval.guest import keys
from damon_eval.machines.ssh import SshSession
from damon_eval.machines.ssh_keys import load_known_hosts, pin_client
from damon_eval.machines.ssh_transport import SshTarget, remote_command, script_command


class _Server(paramiko.ServerInterface):
    def __init__(self, authorized: paramiko.PKey) -> None:
        self.authorized = authorized
        self.commands: list[str] = []
        self.exec_event = threading.Event()

    def check_auth_publickey(self, username, key):
        if username == "root" and key == self.authorized:
            return paramiko.AUTH_SUCCESSFUL
        return paramiko.AUTH_FAILED

    def get_allowed_auths(self, username):
        return "publickey"

    def check_channel_request(self, kind, chanid):
        if kind == "session":
            return paramiko.OPEN_SUCCEEDED
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_exec_request(self, channel, command):
        self.commands.append(command.decode())
        self.exec_event.set()
        return True


class FakeSshd:
    """Accepts connections with a given host key; answers exec requests.

    ``... sh -s``: echoes stdin back; a command containing "hang" never
    answers; anything else prints "ran" and exits 3.
    """

    def __init__(self, host_key: paramiko.PKey, authorized: paramiko.PKey) -> None:
        self.host_key = host_key
        self.authorized = authorized
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(5)
        self.port = self.listener.getsockname()[1]
        self.commands: list[str] = []
        self.transports: list[paramiko.Transport] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        transport = paramiko.Transport(conn)
        self.transports.append(transport)
        transport.add_server_key(self.host_key)
        server = _Server(self.authorized)
        try:
            transport.start_server(server=server)
        except (paramiko.SSHException, EOFError, OSError):
            return
        while transport.is_active():
            channel = transport.accept(1)
            if channel is None:
                continue
            server.exec_event.wait(5)
            server.exec_event.clear()
            command = server.commands[-1]
            self.commands.append(command)
            if "hang" in command:
                continue  # never answers: a wedged guest
            if command.endswith("sh -s"):
                data = b""
                while True:
                    chunk = channel.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                channel.sendall(data)
                channel.send_exit_status(0)
            else:
                channel.sendall(b"ran\n")
                channel.sendall_stderr(b"warn\n")
                channel.send_exit_status(3)
            channel.close()

    def close(self) -> None:
        self.listener.close()
        for transport in self.transports:
            transport.close()


def _key_files(tmp_path: Path):
    host = keys.generate_ed25519("host")
    impostor = keys.generate_ed25519("impostor")
    client = keys.generate_ed25519("client")
    client_path = tmp_path / "id_ed25519"
    keys.write_private_key(client_path, client.private_openssh)
    image_known_hosts = tmp_path / "image_known_hosts"
    image_known_hosts.write_text(keys.known_hosts_line(keys.HOST_KEY_ALIAS, host.public_line))

    def pkey(pair):
        return paramiko.Ed25519Key.from_private_key(io.StringIO(pair.private_openssh))

    return client_path, image_known_hosts, pkey(host), pkey(impostor), pkey(client)


@pytest.fixture
def keyset(tmp_path):
    return _key_files(tmp_path)


def _session(tmp_path, keyset, server) -> SshSession:
    client_path, image_known_hosts, *_ = keyset
    known_hosts = keys.write_guest_known_hosts(
        image_known_hosts, tmp_path / "known_hosts", server.port
    )
    return SshSession(SshTarget(server.port, client_path, known_hosts), "test-guest")


def test_private_key_is_owner_only(keyset):
    client_path = keyset[0]
    assert stat.S_IMODE(os.stat(client_path).st_mode) == 0o600


def test_guest_known_hosts_pins_the_port(tmp_path, keyset):
    _, image_known_hosts, host, *_ = keyset
    path = keys.write_guest_known_hosts(image_known_hosts, tmp_path / "kh", 40022)
    line = path.read_text()
    assert line.startswith("[127.0.0.1]:40022 ssh-ed25519 ")
    loaded = load_known_hosts(path).host_keys
    assert loaded.lookup("[127.0.0.1]:40022")["ssh-ed25519"] == host


def test_pin_client_uses_reject_policy_and_only_pinned_keys(tmp_path, keyset):
    _, image_known_hosts, host, *_ = keyset
    path = keys.write_guest_known_hosts(image_known_hosts, tmp_path / "kh", 2222)
    client = paramiko.SSHClient()
    client.get_host_keys().add("[127.0.0.1]:2222", "ssh-ed25519", keyset[3])  # stale entry
    pin_client(client, path)
    assert isinstance(client._policy, paramiko.RejectPolicy)
    assert client.get_host_keys().lookup("[127.0.0.1]:2222")["ssh-ed25519"] == host


def test_missing_pinned_entry_is_an_error(tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(GuestError, match="no entry for damon-eval-guest"):
        keys.read_pinned_key(empty)
    with pytest.raises(GuestError, match="is missing"):
        keys.read_pinned_key(tmp_path / "absent")


def test_pinned_host_key_is_accepted_and_commands_run(tmp_path, keyset):
    _, _, host, _, client = keyset
    server = FakeSshd(host, client)
    session = _session(tmp_path, keyset, server)
    try:
        session.connect(time.monotonic() + 20)
        result = session.run("echo 'hi there'", timeout_s=10)
        assert (result.exit_status, result.stdout, result.stderr) == (3, "ran\n", "warn\n")
        assert server.commands[-1] == remote_command("echo 'hi there'", 10)
        assert server.commands[-1] == "timeout -k 5 10 sh -c 'echo '\"'\"'hi there'\"'\"''"
        script = "echo one\n" + "x" * 50_000 + "\n"
        started = time.monotonic()
        echoed = session.run_script(script, timeout_s=30)
        assert echoed.stdout == script and echoed.exit_status == 0
        assert time.monotonic() - started < 5, "a 50 KB script must not be sent byte by byte"
        assert server.commands[-1] == script_command(30)
    finally:
        session.close()
        server.close()


def test_other_host_key_is_rejected_at_once(tmp_path, keyset):
    _, _, _, impostor, client = keyset
    server = FakeSshd(impostor, client)
    session = _session(tmp_path, keyset, server)
    started = time.monotonic()
    try:
        with pytest.raises(GuestError, match="not the pinned one"):
            session.connect(time.monotonic() + 60)
        assert time.monotonic() - started < 15, "a wrong host key must not be retried"
        assert server.commands == []
    finally:
        server.close()


def test_nothing_listening_times_out_with_a_clear_error(tmp_path, keyset):
    client_path, image_known_hosts, *_ = keyset
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    known_hosts = keys.write_guest_known_hosts(image_known_hosts, tmp_path / "kh", port)
    session = SshSession(
        SshTarget(port, client_path, known_hosts), "g", console_tail=lambda: "login:"
    )
    with pytest.raises(GuestError, match=r"did not answer SSH.*login:"):
        session.connect(time.monotonic() + 2)


def test_dead_guest_stops_the_wait_and_names_it(tmp_path, keyset):
    client_path, image_known_hosts, *_ = keyset
    known_hosts = keys.write_guest_known_hosts(image_known_hosts, tmp_path / "kh", 1)
    session = SshSession(
        SshTarget(1, client_path, known_hosts),
        "g7",
        alive=lambda: False,
        console_tail=lambda: "Kernel panic",
    )
    started = time.monotonic()
    with pytest.raises(GuestError, match=r"guest g7 died while booting.*Kernel panic"):
        session.connect(time.monotonic() + 60, what="while booting")
    assert time.monotonic() - started < 2


def test_guest_dying_mid_command_is_an_error_not_a_hang(tmp_path, keyset):
    _, _, host, _, client = keyset
    server = FakeSshd(host, client)
    session = _session(tmp_path, keyset, server)
    session.connect(time.monotonic() + 20)
    alive = {"value": True}
    session._alive = lambda: alive["value"]
    session._console_tail = lambda: "last words"

    def die_soon():
        time.sleep(0.5)
        alive["value"] = False
        server.close()  # QEMU gone: slirp's socket closes

    threading.Thread(target=die_soon, daemon=True).start()
    started = time.monotonic()
    try:
        with pytest.raises(GuestError, match=r"guest test-guest died.*'hang 100'.*last words"):
            session.run("hang 100", timeout_s=100)
        assert time.monotonic() - started < 10
    finally:
        server.close()


def test_unresponsive_guest_hits_the_host_side_timeout(tmp_path, keyset, monkeypatch):
    from damon_eval.machines import ssh_transport

    monkeypatch.setattr(ssh_transport, "KILL_AFTER_S", 0)
    monkeypatch.setattr(ssh_transport, "HOST_GRACE_S", 0.5)
    _, _, host, _, client = keyset
    server = FakeSshd(host, client)
    session = _session(tmp_path, keyset, server)
    try:
        session.connect(time.monotonic() + 20)
        started = time.monotonic()
        with pytest.raises(GuestError, match="unresponsive"):
            session.run("hang 1", timeout_s=1)
        assert time.monotonic() - started < 5
    finally:
        server.close()
