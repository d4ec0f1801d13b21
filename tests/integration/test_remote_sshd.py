"""--ssh against a real OpenSSH server: a private sshd on 127.0.0.1 with its own config,
host key and port (tests/local_sshd.py), started and stopped by the test.

Connection, authentication (key file, ssh-agent), host-key policy and file transfer only:
this sshd logs into *this* machine, whose DAMON must never be written to, so nothing here
touches /sys/kernel/mm/damon.  The sshd has no SFTP subsystem: remote machines need none.
Skipped, saying why, without root or /usr/sbin/sshd.
"""

from __future__ import annotations

import os
import re
import subprocess
import time

import pytest
from local_sshd import LocalSshd, ssh_agent, stop_agent, unavailable_reason

from damon_eval.errors import RemoteError
from damon_eval.fs import Exists, ListDir, MakeDir, Read, RemoveDir, Write
from damon_eval.guest import keys
from damon_eval.machines.remote import RemoteMachine, RemoteOptions, RemoteSpec

REASON = unavailable_reason()
pytestmark = pytest.mark.skipif(REASON is not None, reason=REASON or "")


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    server = LocalSshd(tmp_path_factory.mktemp("sshd"))
    with server:
        yield server


def _options(sshd: LocalSshd, known, **kw) -> RemoteOptions:
    return RemoteOptions(RemoteSpec("root", "127.0.0.1", sshd.port), known_hosts=known, **kw)


def test_commands_scripts_files_and_transfers(sshd, tmp_path):
    known = sshd.write_known_hosts(tmp_path / "known_hosts")
    machine = RemoteMachine.connect(_options(sshd, known, identity=sshd.client_key,
                                             use_agent=False))  # fmt: skip
    try:
        result = machine.run("uname -r; echo err >&2; exit 3", timeout_s=30)
        assert (result.exit_status, result.stdout.strip(), result.stderr.strip()) == (
            3,
            os.uname().release,
            "err",
        )
        started = time.monotonic()
        assert machine.run("sleep 30", timeout_s=2).exit_status == 124
        assert time.monotonic() - started < 15
        # ShellFs: a batch is one SSH command, on files of this test only
        root = tmp_path / "tree"
        (root / "f").parent.mkdir(parents=True)
        (root / "f").write_text("old\n")
        fs = machine.fs
        ops = [
            Read(f"{root}/f"),
            Write(f"{root}/f", "new"),
            Read(f"{root}/f"),
            MakeDir(f"{root}/d"),
            ListDir(f"{root}"),
            RemoveDir(f"{root}/d"),
            Exists(f"{root}/d"),
        ]
        assert fs.execute(ops) == ["old", None, "new", None, ["d", "f"], None, False]
        # binary files both ways, without SFTP, through a rename into place
        blob = tmp_path / "blob"
        blob.write_bytes(os.urandom(3 << 20) + b"\n\0end")
        blob.chmod(0o751)
        remote = str(tmp_path / "remote" / "sub" / "blob")
        machine.put(blob, remote)
        assert os.stat(remote).st_mode & 0o777 == 0o751
        machine.get(remote, tmp_path / "back")
        assert (tmp_path / "back").read_bytes() == blob.read_bytes()
        with pytest.raises(RemoteError, match="No such file"):
            machine.get(str(tmp_path / "absent"), tmp_path / "x")
        assert not (tmp_path / "x").exists() and not (tmp_path / "x.part").exists()
        facts = machine.facts()
        assert facts["kernel_release"] == os.uname().release
        assert facts["accel"] == "none (bare metal or foreign VM)" and facts["user_id"] == 0
        machine.require_root()
        # a closed connection is replaced on the next command
        machine.disconnect()
        assert machine.run("echo again", timeout_s=30).stdout == "again\n"
    finally:
        machine.disconnect()


def test_keys_from_ssh_agent(sshd, tmp_path):
    known = sshd.write_known_hosts(tmp_path / "known_hosts")
    env = ssh_agent(tmp_path, sshd.client_key)
    saved = os.environ.get("SSH_AUTH_SOCK")
    os.environ["SSH_AUTH_SOCK"] = env["SSH_AUTH_SOCK"]
    try:
        machine = RemoteMachine.connect(_options(sshd, known))  # agent only
        assert machine.run("echo via agent", timeout_s=30).stdout == "via agent\n"
        machine.disconnect()
    finally:
        if saved is None:
            os.environ.pop("SSH_AUTH_SOCK", None)
        else:
            os.environ["SSH_AUTH_SOCK"] = saved
        stop_agent(env)


def test_unknown_host_key_advice_works_when_followed(sshd, tmp_path):
    known = tmp_path / "known_hosts"
    known.write_text("")
    options = _options(sshd, known, identity=sshd.client_key, use_agent=False)
    with pytest.raises(RemoteError) as info:
        RemoteMachine.connect(options)
    message = str(info.value)
    # the fingerprint in the message is the one ssh-keygen shows on the server
    shown = subprocess.run(
        ["ssh-keygen", "-lf", f"{sshd.host_key_path}"], capture_output=True, text=True, check=True
    ).stdout.split()[1]
    assert f"(ssh-ed25519 {shown})" in message
    keyscan = re.search(r"`(ssh-keyscan [^`]+)`", message)
    assert keyscan, message
    command = keyscan.group(1)
    assert command == f"ssh-keyscan -p {sshd.port} -t ed25519 127.0.0.1 >> {known}"
    subprocess.run(command, shell=True, check=True, capture_output=True)
    machine = RemoteMachine.connect(options)
    assert machine.run("true", timeout_s=30).exit_status == 0
    machine.disconnect()


def test_changed_host_key_is_refused(sshd, tmp_path):
    impostor = keys.generate_ed25519("old-host-key")
    known = tmp_path / "known_hosts"
    known.write_text(keys.known_hosts_line(f"[127.0.0.1]:{sshd.port}", impostor.public_line))
    with pytest.raises(RemoteError) as info:
        RemoteMachine.connect(_options(sshd, known, identity=sshd.client_key, use_agent=False))
    message = str(info.value)
    assert "refusing to connect" in message
    assert keys.fingerprint_sha256(impostor.public_line) in message
    assert keys.fingerprint_sha256(sshd.host.public_line) in message
    assert f"ssh-keygen -R '[127.0.0.1]:{sshd.port}' -f {known}" in message


def test_unaccepted_key_fails_fast_without_passwords(sshd, tmp_path):
    known = sshd.write_known_hosts(tmp_path / "known_hosts")
    stranger = keys.generate_ed25519("stranger")
    path = tmp_path / "stranger"
    keys.write_private_key(path, stranger.private_openssh)
    started = time.monotonic()
    with pytest.raises(RemoteError, match=r"refused authentication.*never passwords"):
        RemoteMachine.connect(_options(sshd, known, identity=path, use_agent=False,
                                       connect_timeout_s=60))  # fmt: skip
    assert time.monotonic() - started < 15
    log = sshd.log_path.read_text()
    assert "Failed publickey for root" in log
    assert "password" not in log.lower().replace("passwordauthentication", "")
