"""--ssh machines: USER@HOST parsing, the known_hosts policy and its messages, authentication,
timeouts; against paramiko's in-process server (no root, no network)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import socket
import threading
import time
from pathlib import Path

import paramiko
import pytest
from test_guest_ssh import FakeSshd, _key_files

from damon_eval.errors import ConfigError, RemoteError
from damon_eval.guest import keys
from damon_eval.machines.remote import RemoteMachine, RemoteOptions, RemoteSpec
from damon_eval.machines.ssh_keys import fingerprint, load_known_hosts


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("root@box", RemoteSpec("root", "box", 22)),
        ("alice@10.0.0.5:2222", RemoteSpec("alice", "10.0.0.5", 2222)),
        ("box.example.org", RemoteSpec("root", "box.example.org", 22)),
        ("root@[::1]:2200", RemoteSpec("root", "::1", 2200)),
        ("root@[fe80::1%eth0]", RemoteSpec("root", "fe80::1%eth0", 22)),
    ],
)
def test_ssh_spec_parsing(text, expected):
    spec = RemoteSpec.parse(text)
    assert spec == expected
    assert RemoteSpec.parse(str(spec)) == spec


@pytest.mark.parametrize("text", ["", "root@", "root@box:", "root@box:99999", "a b@c", "@box",
                                  "root@box:22:3", "root@::1"])  # fmt: skip
def test_bad_ssh_specs_name_the_value_and_the_form(text):
    with pytest.raises(ConfigError) as info:
        RemoteSpec.parse(text)
    message = str(info.value)
    assert repr(text) in message
    assert "USER@HOST" in message or "out of range" in message


def test_missing_known_hosts_says_how_to_make_it(tmp_path):
    options = RemoteOptions(RemoteSpec("root", "box", 2222), known_hosts=tmp_path / "none")
    with pytest.raises(ConfigError) as info:
        options.known_hosts_path()
    message = str(info.value)
    assert str(tmp_path / "none") in message
    assert f"ssh-keyscan -p 2222 -t ed25519 box >> {tmp_path / 'none'}" in message
    assert "ssh-keygen -lf" in message and "\n" not in message


def test_missing_identity_is_an_error(tmp_path):
    known = tmp_path / "kh"
    known.write_text("")
    options = RemoteOptions(RemoteSpec("root", "box"), known_hosts=known, identity=tmp_path / "k")
    with pytest.raises(ConfigError, match=r"--identity .*k: no such file"):
        RemoteMachine(options)


def _hashed(host: str, salt: bytes = b"0123456789abcdef0123") -> str:
    digest = hmac.new(salt, host.encode(), hashlib.sha1).digest()
    return f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"


def test_known_hosts_parsing(tmp_path, keyset):
    _, _, host, impostor, _ = keyset
    line = f"{host.get_name()} {host.get_base64()}"
    other = f"{impostor.get_name()} {impostor.get_base64()}"
    path = tmp_path / "known_hosts"
    path.write_text(
        "# comment\n\n"
        f"plain.example,10.1.1.1 {line}\n"
        f"{_hashed('[127.0.0.1]:2222')} {line}\n"
        f"@cert-authority *.example {other}\n"
        f"@revoked * {other}\n"
        "garbage line\n"
        "broken ssh-ed25519 !!!notbase64!!!\n"
    )
    known = load_known_hosts(path)
    assert known.host_keys.lookup("plain.example")["ssh-ed25519"] == host
    assert known.host_keys.lookup("10.1.1.1")["ssh-ed25519"] == host
    assert known.host_keys.lookup("[127.0.0.1]:2222")["ssh-ed25519"] == host
    assert known.host_keys.lookup("[127.0.0.1]:2223") is None
    assert known.revoked == (impostor,)
    assert known.skipped == (5, 7, 8)


@pytest.fixture
def keyset(tmp_path):
    return _key_files(tmp_path)


def _options(server_port: int, known: Path, identity: Path | None, **extra) -> RemoteOptions:
    return RemoteOptions(
        RemoteSpec("root", "127.0.0.1", server_port),
        known_hosts=known,
        identity=identity,
        use_agent=False,
        connect_timeout_s=extra.pop("connect_timeout_s", 10),
        **extra,
    )


def _known(tmp_path: Path, port: int, key: paramiko.PKey, name: str = "kh") -> Path:
    path = tmp_path / name
    path.write_text(f"[127.0.0.1]:{port} {key.get_name()} {key.get_base64()}\n")
    return path


def test_listed_host_key_connects_and_runs(tmp_path, keyset):
    client_path, _, host, _, client = keyset
    server = FakeSshd(host, client)
    try:
        machine = RemoteMachine.connect(
            _options(server.port, _known(tmp_path, server.port, host), client_path)
        )
        result = machine.run("echo hi", timeout_s=10)
        assert (result.exit_status, result.stdout) == (3, "ran\n")
        assert server.commands[-1] == "timeout -k 5 10 sh -c 'echo hi'"
        assert machine.fs.description == f"remote root@127.0.0.1:{server.port}"
        machine.disconnect()
    finally:
        server.close()


def test_hashed_known_hosts_entry_is_accepted(tmp_path, keyset):
    client_path, _, host, _, client = keyset
    server = FakeSshd(host, client)
    known = tmp_path / "hashed"
    known.write_text(
        f"{_hashed(f'[127.0.0.1]:{server.port}')} {host.get_name()} {host.get_base64()}\n"
    )
    try:
        machine = RemoteMachine.connect(_options(server.port, known, client_path))
        assert machine.run("x", timeout_s=10).stdout == "ran\n"
    finally:
        server.close()


def test_unknown_host_is_refused_at_once_with_fingerprint_and_keyscan(tmp_path, keyset):
    client_path, _, host, impostor, client = keyset
    server = FakeSshd(host, client)
    known = _known(tmp_path, 1, impostor)  # keys for another port only
    started = time.monotonic()
    try:
        with pytest.raises(RemoteError) as info:
            RemoteMachine.connect(_options(server.port, known, client_path, connect_timeout_s=60))
        assert time.monotonic() - started < 10, "an unknown key must not be retried"
        message = str(info.value)
        assert f"[127.0.0.1]:{server.port} (ssh-ed25519 {fingerprint(host)})" in message
        assert f"is not in {known}" in message
        assert f"ssh-keyscan -p {server.port} -t ed25519 127.0.0.1 >> {known}" in message
        assert "ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub" in message
        assert server.commands == [] and "\n" not in message
    finally:
        server.close()


def test_changed_host_key_is_refused_with_both_fingerprints(tmp_path, keyset):
    client_path, _, host, impostor, client = keyset
    server = FakeSshd(impostor, client)
    known = _known(tmp_path, server.port, host)
    try:
        with pytest.raises(RemoteError) as info:
            RemoteMachine.connect(_options(server.port, known, client_path))
        message = str(info.value)
        assert fingerprint(impostor) in message and fingerprint(host) in message
        assert f"ssh-keygen -R '[127.0.0.1]:{server.port}' -f {known}" in message
        assert "refusing to connect" in message and server.commands == []
    finally:
        server.close()


def test_revoked_host_key_is_refused(tmp_path, keyset):
    client_path, _, host, _, client = keyset
    server = FakeSshd(host, client)
    known = _known(tmp_path, server.port, host)
    known.write_text(known.read_text() + f"@revoked * {host.get_name()} {host.get_base64()}\n")
    try:
        with pytest.raises(RemoteError, match="marks @revoked: refusing to connect"):
            RemoteMachine.connect(_options(server.port, known, client_path))
        assert server.commands == []
    finally:
        server.close()


def test_refused_key_fails_at_once_and_never_asks_for_a_password(tmp_path, keyset):
    _, _, host, _, client = keyset
    server = FakeSshd(host, client)
    stranger = keys.generate_ed25519("stranger")
    stranger_path = tmp_path / "stranger"
    keys.write_private_key(stranger_path, stranger.private_openssh)
    started = time.monotonic()
    try:
        with pytest.raises(RemoteError) as info:
            RemoteMachine.connect(
                _options(
                    server.port,
                    _known(tmp_path, server.port, host),
                    stranger_path,
                    connect_timeout_s=60,
                )
            )
        assert time.monotonic() - started < 10, "authentication failures are not retried"
        message = str(info.value)
        assert "refused authentication" in message and str(stranger_path) in message
        assert "never passwords" in message
    finally:
        server.close()


def test_encrypted_identity_points_to_ssh_agent(tmp_path, keyset):
    from cryptography.hazmat.primitives import serialization

    _, _, host, _, client = keyset
    server = FakeSshd(host, client)
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.BestAvailableEncryption(b"secret"),
    )
    locked_path = tmp_path / "locked"
    keys.write_private_key(locked_path, pem.decode())
    try:
        with pytest.raises(RemoteError) as info:
            RemoteMachine.connect(
                _options(server.port, _known(tmp_path, server.port, host), locked_path)
            )
        assert f"ssh-add {locked_path}" in str(info.value)
        assert "never asks for passphrases" in str(info.value)
    finally:
        server.close()


def test_silent_server_hits_the_connect_timeout(tmp_path, keyset):
    client_path, _, host, *_ = keyset
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    port = listener.getsockname()[1]
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(listener.accept()[0])  # never sends a banner
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    started = time.monotonic()
    try:
        with pytest.raises(RemoteError, match=r"did not answer SSH on 127\.0\.0\.1:\d+ in time"):
            RemoteMachine.connect(
                _options(port, _known(tmp_path, port, host), client_path, connect_timeout_s=3)
            )
        assert time.monotonic() - started < 15
    finally:
        listener.close()
        for conn in held:
            conn.close()


def test_unresponsive_remote_command_hits_the_local_timeout(tmp_path, keyset, monkeypatch):
    from damon_eval.machines import ssh_transport

    monkeypatch.setattr(ssh_transport, "KILL_AFTER_S", 0)
    monkeypatch.setattr(ssh_transport, "HOST_GRACE_S", 0.5)
    client_path, _, host, _, client = keyset
    server = FakeSshd(host, client)
    try:
        machine = RemoteMachine.connect(
            _options(server.port, _known(tmp_path, server.port, host), client_path)
        )
        started = time.monotonic()
        with pytest.raises(RemoteError, match="the remote is unresponsive"):
            machine.run("hang 1", timeout_s=1)
        assert time.monotonic() - started < 5
    finally:
        server.close()


def test_ssh_options_need_ssh(capsys):
    from damon_eval.cli import main

    assert main(["damon", "status", "--identity", "/x"]) == 2
    assert "--identity only apply with --ssh" in capsys.readouterr().err
    assert main(["damon", "status", "--ssh", "root@box", "--no-agent"]) == 2
    assert "--no-agent leaves no key" in capsys.readouterr().err
    assert main(["damon", "status", "--ssh", "root@box:0x"]) == 2
    assert "expected USER@HOST" in capsys.readouterr().err
