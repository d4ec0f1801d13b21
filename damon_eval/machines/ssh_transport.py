"""SSH below a session: the target, a bounded Fabric connection, and one command on
one channel with a local deadline.  :class:`damon_eval.machines.ssh.SshSession`
turns their failures into errors that name the machine.
"""

from __future__ import annotations

import logging
import math
import select
import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from damon_eval.machines.ssh_keys import host_pattern, pin_client

KILL_AFTER_S = 5  # remote-side `timeout -k`
HOST_GRACE_S = 15.0  # local timeout = command timeout + KILL_AFTER_S + this
SESSION_OPEN_TIMEOUT_S = 30.0
EOF_GRACE_S = 1.0  # after the exit status, wait this long for output without EOF


def remote_command(command: str, timeout_s: float) -> str:
    """``command`` run by ``sh -c`` under the remote ``timeout -k``."""
    return f"timeout -k {KILL_AFTER_S} {math.ceil(timeout_s)} sh -c {shlex.quote(command)}"


def script_command(timeout_s: float) -> str:
    """The command that runs a script sent on stdin (one SSH command per script)."""
    return f"timeout -k {KILL_AFTER_S} {math.ceil(timeout_s)} sh -s"


@dataclass(frozen=True, slots=True)
class SshTarget:
    """Where and how to reach one machine.

    ``key_path``: a private key file (None: none).  ``use_agent``: also offer
    the keys of the ssh-agent at ``$SSH_AUTH_SOCK``.
    """

    port: int
    key_path: Path | None
    known_hosts_path: Path
    host: str = "127.0.0.1"
    user: str = "root"
    use_agent: bool = False

    @property
    def host_key_name(self) -> str:
        """The name known_hosts files list this host under (``[host]:port`` unless 22)."""
        return host_pattern(self.host, self.port)

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.user}@{host}:{self.port}"


# ----------------------------------------------------------------- connecting


def quiet_paramiko() -> None:
    # Banner errors while sshd is still starting are expected; paramiko logs
    # each with a traceback.
    logging.getLogger("paramiko").setLevel(logging.CRITICAL)


def bounded_connection(target: SshTarget, connect_timeout_s: float, remember_unknown: bool):
    from fabric import Config, Connection
    from fabric.connection import opens
    from paramiko.config import SSHConfig

    class BoundedConnection(Connection):
        @opens
        def create_session(self):
            return self.transport.open_session(timeout=SESSION_OPEN_TIMEOUT_S)

    # An explicit empty SSHConfig: no ~/.ssh/config or /etc/ssh/ssh_config;
    # lazy: no Fabric/Invoke config files either.
    config = Config(ssh_config=SSHConfig(), lazy=True)
    connection = BoundedConnection(
        host=target.host,
        user=target.user,
        port=target.port,
        config=config,
        connect_timeout=max(1, math.ceil(connect_timeout_s)),
        connect_kwargs={
            "key_filename": [str(target.key_path)] if target.key_path else [],
            "look_for_keys": False,
            "allow_agent": target.use_agent,
            "banner_timeout": connect_timeout_s,
            "auth_timeout": connect_timeout_s,
        },
    )
    known = pin_client(
        connection.client, target.known_hosts_path, remember_unknown=remember_unknown
    )
    return connection, known


# ------------------------------------------------------------------ commands


class HostTimeout(Exception):
    """The local deadline of a command passed."""


def host_timeout_s(timeout_s: float) -> float:
    """The local deadline of a command the remote side kills after ``timeout_s``."""
    return timeout_s + KILL_AFTER_S + HOST_GRACE_S


def run_on_channel(
    channel,
    remote: str,
    timeout_s: float,
    stdin: bytes | IO[bytes] | None,
    stdout_sink: IO[bytes] | None = None,
) -> tuple[int, bytes, bytes]:
    """Run ``remote`` on a new paramiko ``channel``: (exit status or -1, stdout, stderr).

    Not ``Connection.run``: Invoke pumps a non-terminal stdin one byte per
    10 ms (``invoke.terminals.bytes_to_read``), 8 s for a 1 KB script.
    ``stdin`` may be a binary file (streamed); ``stdout_sink`` receives
    stdout instead of the returned bytes.  Raises :class:`HostTimeout` past the
    local deadline; paramiko's and the socket's errors pass through.
    """
    limit_s = host_timeout_s(timeout_s)
    deadline = time.monotonic() + limit_s
    stdout, stderr = bytearray(), bytearray()

    def drain() -> bool:
        drained = False
        while channel.recv_ready():
            chunk = channel.recv(65536)
            if stdout_sink is not None:
                stdout_sink.write(chunk)
            else:
                stdout.extend(chunk)
            drained = True
        while channel.recv_stderr_ready():
            stderr.extend(channel.recv_stderr(65536))
            drained = True
        return drained

    channel.settimeout(limit_s)
    channel.exec_command(remote)
    if isinstance(stdin, bytes | bytearray):
        if stdin:
            channel.sendall(stdin)
    elif stdin is not None:
        while chunk := stdin.read(1 << 16):
            channel.sendall(chunk)
            drain()
            if time.monotonic() >= deadline:
                channel.close()
                raise HostTimeout
    channel.shutdown_write()
    last_data = time.monotonic()
    while True:
        drained = drain()
        if drained:
            last_data = time.monotonic()
        # sshd may send the exit status before output still queued behind our
        # window: wait for EOF, or (a background process holding the output
        # open) for a quiet moment.
        if (
            channel.exit_status_ready()
            and not (channel.recv_ready() or channel.recv_stderr_ready())
            and (channel.eof_received or time.monotonic() - last_data > EOF_GRACE_S)
        ):
            break
        if channel.closed and not drained:
            break
        if time.monotonic() >= deadline:
            channel.close()
            raise HostTimeout
        if not drained:
            # The channel's fileno becomes readable on stdout data or close.
            select.select([channel], [], [], 0.02)
    status = channel.recv_exit_status() if channel.exit_status_ready() else -1
    channel.close()
    return status, bytes(stdout), bytes(stderr)
