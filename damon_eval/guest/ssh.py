"""SSH to a guest with Fabric, without ever hanging.

* The host key is pinned (:mod:`damon_eval.guest.keys`); paramiko rejects
  any other key.  ``~/.ssh/config``, ssh agents and default keys are ignored.
* Connect, banner and auth have timeouts; opening a session has one too
  (Fabric's ``create_session`` has none: a dead peer could block it for an
  hour, fabric#2197).
* Every command runs under a guest-side ``timeout -k`` *and* a host-side
  timeout a little longer, so a wedged guest raises :class:`GuestError`.
* A dead connection is replaced by a new one on the next command; if QEMU
  itself died the error names the guest, the command and the console's last
  lines.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import select
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from damon_eval.errors import GuestError
from damon_eval.fs import CommandResult
from damon_eval.guest import keys

log = logging.getLogger(__name__)

KILL_AFTER_S = 5  # guest-side `timeout -k`
HOST_GRACE_S = 15.0  # host-side timeout = command timeout + this
CONNECT_TIMEOUT_S = 10.0
SESSION_OPEN_TIMEOUT_S = 30.0
SFTP_TIMEOUT_S = 120.0


def guest_command(command: str, timeout_s: float) -> str:
    """``command`` run by ``sh -c`` under the guest's ``timeout -k``."""
    return f"timeout -k {KILL_AFTER_S} {math.ceil(timeout_s)} sh -c {shlex.quote(command)}"


def guest_script_command(timeout_s: float) -> str:
    """The command that runs a script sent on stdin (one SSH command per script)."""
    return f"timeout -k {KILL_AFTER_S} {math.ceil(timeout_s)} sh -s"


@dataclass(frozen=True, slots=True)
class SshTarget:
    """Where and how to reach one guest."""

    port: int
    key_path: Path
    known_hosts_path: Path
    host: str = "127.0.0.1"
    user: str = "root"


def _quiet_paramiko() -> None:
    # Banner errors while sshd is still starting are expected; paramiko logs
    # each with a traceback.
    logging.getLogger("paramiko").setLevel(logging.CRITICAL)


def _connection(target: SshTarget, connect_timeout_s: float):
    from fabric import Config, Connection
    from fabric.connection import opens
    from paramiko.config import SSHConfig

    class GuestConnection(Connection):
        @opens
        def create_session(self):
            return self.transport.open_session(timeout=SESSION_OPEN_TIMEOUT_S)

    # An explicit empty SSHConfig: no ~/.ssh/config or /etc/ssh/ssh_config;
    # lazy: no Fabric/Invoke config files either.
    config = Config(ssh_config=SSHConfig(), lazy=True)
    connection = GuestConnection(
        host=target.host,
        user=target.user,
        port=target.port,
        config=config,
        connect_timeout=max(1, math.ceil(connect_timeout_s)),
        connect_kwargs={
            "key_filename": [str(target.key_path)],
            "look_for_keys": False,
            "allow_agent": False,
            "banner_timeout": connect_timeout_s,
            "auth_timeout": connect_timeout_s,
        },
    )
    keys.pin_client(connection.client, target.known_hosts_path)
    return connection


def _is_host_key_error(exc: BaseException) -> bool:
    import paramiko

    if isinstance(exc, paramiko.BadHostKeyException):
        return True
    return isinstance(exc, paramiko.SSHException) and "not found in known_hosts" in str(exc)


class _HostTimeout(Exception):
    """The host-side deadline of a command passed."""


class SshSession:
    """Commands and file transfers to one guest (reconnects as needed)."""

    def __init__(
        self,
        target: SshTarget,
        guest_name: str,
        alive: Callable[[], bool] = lambda: True,
        console_tail: Callable[[], str] = lambda: "",
    ) -> None:
        self.target = target
        self.guest_name = guest_name
        self._alive = alive
        self._console_tail = console_tail
        self._connection = None
        _quiet_paramiko()

    # ---------------------------------------------------------- connecting

    def _died(self, grace_s: float = 3.0) -> bool:
        """Whether QEMU is gone, allowing for the moment between a dying process
        closing its sockets and its exit becoming visible."""
        deadline = time.monotonic() + grace_s
        while self._alive():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def _dead_error(self, what: str) -> GuestError:
        return GuestError(
            f"guest {self.guest_name} died {what}; last console lines: {self._console_tail()}"
        )

    def connect(self, deadline: float, what: str = "while connecting") -> None:
        """Open a connection, retrying refused/banner/auth errors until ``deadline``.

        A wrong host key is never retried: it fails at once.
        """
        last_error: BaseException | None = None
        while True:
            if not self._alive():
                raise self._dead_error(what)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            connection = _connection(self.target, min(CONNECT_TIMEOUT_S, max(remaining, 1.0)))
            try:
                connection.open()
                connection.transport.set_keepalive(15)
                self.close()
                self._connection = connection
                return
            except Exception as exc:
                connection.close()
                if _is_host_key_error(exc):
                    raise GuestError(
                        f"guest {self.guest_name} on port {self.target.port} presented a host "
                        f"key that is not the pinned one ({exc}); refusing to connect. Is "
                        "another program listening on that port?"
                    ) from exc
                last_error = exc
                log.debug("SSH to %s not ready: %s: %s", self.guest_name, type(exc).__name__, exc)
                time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
        raise GuestError(
            f"guest {self.guest_name} did not answer SSH on 127.0.0.1:{self.target.port} "
            f"in time (last error: {type(last_error).__name__}: {last_error}); "
            f"last console lines: {self._console_tail()}"
        )

    def _ensure(self, what: str):
        connection = self._connection
        if connection is not None and connection.is_connected:
            return connection
        log.info("reconnecting to guest %s (%s)", self.guest_name, what)
        self.connect(time.monotonic() + 30.0, what=what)
        return self._connection

    def close(self) -> None:
        if self._connection is not None:
            # Closing a broken transport may raise anything.
            with contextlib.suppress(Exception):
                self._connection.close()
            self._connection = None

    # ------------------------------------------------------------ commands

    def _execute(
        self, remote_command: str, description: str, timeout_s: float, stdin: str | None
    ) -> CommandResult:
        """Run one remote command on a new channel of the Fabric connection.

        Not ``Connection.run``: Invoke pumps a non-terminal stdin one byte per
        10 ms (``invoke.terminals.bytes_to_read``), 8 s for a 1 KB script.
        """
        what = f"while running {description!r}"
        connection = self._ensure(what)
        host_timeout_s = timeout_s + KILL_AFTER_S + HOST_GRACE_S
        deadline = time.monotonic() + host_timeout_s
        try:
            channel = connection.create_session()
            channel.settimeout(host_timeout_s)
            channel.exec_command(remote_command)
            if stdin:
                channel.sendall(stdin.encode())
            channel.shutdown_write()
            stdout, stderr = bytearray(), bytearray()
            while True:
                drained = False
                while channel.recv_ready():
                    stdout += channel.recv(65536)
                    drained = True
                while channel.recv_stderr_ready():
                    stderr += channel.recv_stderr(65536)
                    drained = True
                if channel.exit_status_ready() and not (
                    channel.recv_ready() or channel.recv_stderr_ready()
                ):
                    break
                if channel.closed and not drained:
                    break
                if time.monotonic() >= deadline:
                    channel.close()
                    raise _HostTimeout
                if not drained:
                    # The channel's fileno becomes readable on stdout data or close.
                    select.select([channel], [], [], 0.02)
            status = channel.recv_exit_status() if channel.exit_status_ready() else -1
            channel.close()
        except _HostTimeout:
            self.close()
            if self._died():
                raise self._dead_error(what) from None
            raise GuestError(
                f"guest {self.guest_name} did not finish {description!r} within "
                f"{timeout_s:g} s even after the guest-side timeout; the guest is unresponsive; "
                f"last console lines: {self._console_tail()}"
            ) from None
        except Exception as exc:  # paramiko/socket errors: the link died
            self.close()
            if self._died():
                raise self._dead_error(what) from exc
            raise GuestError(
                f"lost the SSH connection to guest {self.guest_name} {what}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        if status < 0:
            self.close()
            if self._died():
                raise self._dead_error(what)
            raise GuestError(
                f"guest {self.guest_name} closed the connection {what} without an exit status"
            )
        return CommandResult(
            status, stdout.decode(errors="replace"), stderr.decode(errors="replace")
        )

    def run(self, command: str, timeout_s: float) -> CommandResult:
        """Run ``command`` (sh syntax) in the guest, killed after ``timeout_s``.

        The guest-side ``timeout`` makes a command that runs too long exit
        with status 124 (137 if it ignored SIGTERM).
        """
        return self._execute(guest_command(command, timeout_s), command, timeout_s, None)

    def run_script(self, script: str, timeout_s: float) -> CommandResult:
        """Send ``script`` on stdin to one ``sh -s`` (one SSH command)."""
        first = next((line for line in script.splitlines() if line.strip()), "")
        return self._execute(
            guest_script_command(timeout_s), f"sh script ({first[:40]}...)", timeout_s, script
        )

    # ------------------------------------------------------------ transfers

    def _sftp(self, what: str):
        connection = self._ensure(what)
        sftp = connection.sftp()
        sftp.get_channel().settimeout(SFTP_TIMEOUT_S)
        return connection

    def put(self, local_path: Path | str, remote_path: str) -> None:
        what = f"while copying {local_path} to {remote_path}"
        if not Path(local_path).is_file():
            raise GuestError(f"cannot copy {local_path} to guest {self.guest_name}: no such file")
        try:
            self._sftp(what).put(str(local_path), remote=remote_path, preserve_mode=True)
        except GuestError:
            raise
        except Exception as exc:
            self.close()
            if self._died():
                raise self._dead_error(what) from exc
            raise GuestError(f"guest {self.guest_name}: failed {what}: {exc}") from exc

    def get(self, remote_path: str, local_path: Path | str) -> None:
        what = f"while copying {remote_path} from the guest to {local_path}"
        Path(local_path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._sftp(what).get(remote_path, local=str(local_path), preserve_mode=True)
        except GuestError:
            raise
        except Exception as exc:
            self.close()
            if self._died():
                raise self._dead_error(what) from exc
            raise GuestError(f"guest {self.guest_name}: failed {what}: {exc}") from exc

    # ---------------------------------------------------------- interactive

    def interactive_shell(self) -> int:
        """An interactive login shell on a pty (the terminal in raw mode); its exit status."""
        connection = self._ensure("opening a shell")
        channel = connection.transport.open_session(timeout=SESSION_OPEN_TIMEOUT_S)
        stdin_fd = sys.stdin.fileno()
        is_tty = os.isatty(stdin_fd)
        size = os.get_terminal_size(stdin_fd) if is_tty else os.terminal_size((80, 24))
        channel.get_pty(term=os.environ.get("TERM", "vt100"), width=size.columns,
                        height=size.lines)  # fmt: skip
        channel.invoke_shell()
        saved = None
        if is_tty:
            import termios
            import tty

            saved = termios.tcgetattr(stdin_fd)
            tty.setraw(stdin_fd)
        try:
            stdin_open = True
            while not channel.exit_status_ready() or channel.recv_ready():
                readable = [channel] + ([stdin_fd] if stdin_open else [])
                ready, _, _ = select.select(readable, [], [], 0.5)
                if channel in ready:
                    data = channel.recv(32768)
                    if not data:
                        break
                    os.write(sys.stdout.fileno(), data)
                if stdin_fd in ready:
                    data = os.read(stdin_fd, 4096)
                    if data:
                        channel.sendall(data)
                    else:
                        stdin_open = False
                        channel.shutdown_write()
                if not self._alive():
                    raise self._dead_error("during the interactive shell")
        finally:
            if saved is not None:
                import termios

                termios.tcsetattr(stdin_fd, termios.TCSADRAIN, saved)
        status = channel.recv_exit_status()
        channel.close()
        return status
