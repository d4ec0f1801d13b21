"""SSH with Fabric/paramiko that never hangs and never trusts an unknown host key.

One implementation for both kinds of machines the harness reaches over SSH:

* guests (:mod:`damon_eval.guest.machine`): the image's client key only, the image's
  pinned host key, retries while the guest boots, and errors that name the
  guest and quote its console;
* remote machines (:mod:`damon_eval.machines.remote`): keys from ssh-agent and/or an
  ``--identity`` file, the user's ``known_hosts``, no retries of
  authentication failures, and host-key errors that say how to add the key.

Common rules:

* Host keys come from one known_hosts file only; paramiko's
  :class:`~paramiko.client.RejectPolicy` (or :class:`RejectUnknownHost`, which
  remembers the presented key for the error message) refuses anything else.
  ``~/.ssh/config`` and Fabric/Invoke configuration files are ignored; no
  password is ever sent or asked for.
* Connect, banner and auth have timeouts; opening a session has one too
  (Fabric's ``create_session`` has none: a dead peer could block it for an
  hour, fabric#2197).
* Every command runs under a remote-side ``timeout -k`` *and* a local timeout
  a little longer, so a wedged peer raises instead of hanging.
* A dead connection is replaced by a new one on the next command.

The target, the Fabric connection and the command pump are
:mod:`~damon_eval.machines.ssh_transport`'s.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from damon_eval.errors import DamonEvalError, GuestError
from damon_eval.fs import CommandResult
from damon_eval.machines.ssh_keys import RevokedHostKey, is_auth_error, is_host_key_error
from damon_eval.machines.ssh_transport import (
    SESSION_OPEN_TIMEOUT_S,
    HostTimeout,
    SshTarget,
    bounded_connection,
    quiet_paramiko,
    remote_command,
    run_on_channel,
    script_command,
)

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0
SFTP_TIMEOUT_S = 120.0
RECONNECT_TIMEOUT_S = 30.0


HostKeyMessage = Callable[[BaseException], str]


class SshSession:
    """Commands and file transfers to one machine (reconnects as needed).

    ``kind``/``name`` name the machine in errors ("guest g123", "remote
    root@box:22"); ``error`` is the exception class raised.  ``alive`` says
    whether the machine still exists (a guest's QEMU); ``console_tail`` quotes
    its console.  ``host_key_message`` turns a host-key failure into the
    error's text.  ``retry_auth``: keep retrying authentication failures
    until the deadline (a booting guest) instead of failing at once.
    """

    def __init__(
        self,
        target: SshTarget,
        name: str,
        alive: Callable[[], bool] = lambda: True,
        console_tail: Callable[[], str] = lambda: "",
        *,
        kind: str = "guest",
        error: type[DamonEvalError] = GuestError,
        host_key_message: HostKeyMessage | None = None,
        retry_auth: bool = True,
    ) -> None:
        self.target = target
        self.name = name
        self.kind = kind
        self.error = error
        self._alive = alive
        self._console_tail = console_tail
        self._host_key_message = host_key_message
        self._retry_auth = retry_auth
        self._connection = None
        quiet_paramiko()

    @property
    def label(self) -> str:
        return f"{self.kind} {self.name}"

    def _console_note(self) -> str:
        return f"; last console lines: {self._console_tail()}" if self.kind == "guest" else ""

    # ---------------------------------------------------------- connecting

    def _died(self, grace_s: float = 3.0) -> bool:
        """Whether the machine is gone, allowing for the moment between a dying
        process closing its sockets and its exit becoming visible."""
        deadline = time.monotonic() + grace_s
        while self._alive():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def _dead_error(self, what: str) -> DamonEvalError:
        return self.error(f"{self.label} died {what}{self._console_note()}")

    def _default_host_key_message(self, exc: BaseException) -> str:
        return (
            f"{self.label} on port {self.target.port} presented a host key that is not the "
            f"pinned one ({exc}); refusing to connect. Is another program listening on that port?"
        )

    def connect(self, deadline: float, what: str = "while connecting") -> None:
        """Open a connection, retrying refused/banner(/auth) errors until ``deadline``.

        A wrong or unknown host key is never retried: it fails at once.
        """
        last_error: BaseException | None = None
        while True:
            if not self._alive():
                raise self._dead_error(what)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            connection, known = bounded_connection(
                self.target,
                min(CONNECT_TIMEOUT_S, max(remaining, 1.0)),
                remember_unknown=self._host_key_message is not None,
            )
            try:
                connection.open()
                presented = connection.transport.get_remote_server_key()
                if any(presented == revoked for revoked in known.revoked):
                    raise RevokedHostKey(self.target.host_key_name, presented)
                connection.transport.set_keepalive(15)
                self.close()
                self._connection = connection
                return
            except Exception as exc:
                connection.close()
                if is_host_key_error(exc):
                    message = (self._host_key_message or self._default_host_key_message)(exc)
                    raise self.error(message) from exc
                if not self._retry_auth and is_auth_error(exc):
                    raise self.error(self._auth_message(exc)) from exc
                if not self._retry_auth and isinstance(exc, socket.gaierror):
                    raise self.error(
                        f"cannot resolve host {self.target.host!r} of {self.label}: {exc}"
                    ) from exc
                last_error = exc
                log.debug("SSH to %s not ready: %s: %s", self.label, type(exc).__name__, exc)
                time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
        raise self.error(
            f"{self.label} did not answer SSH on {self.target.host}:{self.target.port} "
            f"in time (last error: {type(last_error).__name__}: {last_error})"
            f"{self._console_note()}"
        )

    def _auth_message(self, exc: BaseException) -> str:
        import paramiko

        offered = []
        if self.target.key_path:
            offered.append(f"the key {self.target.key_path}")
        if self.target.use_agent:
            sock = os.environ.get("SSH_AUTH_SOCK")
            offered.append(
                f"the ssh-agent's keys ({sock})" if sock else "no ssh-agent (no SSH_AUTH_SOCK)"
            )
        tried = " and ".join(offered) or "no key"
        if isinstance(exc, paramiko.PasswordRequiredException):
            return (
                f"the key {self.target.key_path} is encrypted and damon-eval never asks for "
                f"passphrases: load it into ssh-agent (`ssh-add {self.target.key_path}`) and "
                "drop --identity"
            )
        return (
            f"{self.target.user}@{self.target.host} refused authentication ({exc}); tried "
            f"{tried}. damon-eval uses public keys only (ssh-agent or --identity FILE), never "
            "passwords"
        )

    def _ensure(self, what: str):
        connection = self._connection
        if connection is not None and connection.is_connected:
            return connection
        log.info("reconnecting to %s (%s)", self.label, what)
        self.connect(time.monotonic() + RECONNECT_TIMEOUT_S, what=what)
        return self._connection

    def close(self) -> None:
        if self._connection is not None:
            # Closing a broken transport may raise anything.
            with contextlib.suppress(Exception):
                self._connection.close()
            self._connection = None

    # ------------------------------------------------------------ commands

    def _execute(
        self,
        remote: str,
        description: str,
        timeout_s: float,
        stdin: bytes | IO[bytes] | None,
        stdout_sink: IO[bytes] | None = None,
    ) -> tuple[int, bytes, bytes]:
        """Run one remote command on a new channel of the Fabric connection
        (:func:`~damon_eval.machines.ssh_transport.run_on_channel`)."""
        what = f"while running {description!r}"
        connection = self._ensure(what)
        try:
            channel = connection.create_session()
            status, stdout, stderr = run_on_channel(channel, remote, timeout_s, stdin, stdout_sink)
        except HostTimeout:
            self.close()
            if self._died():
                raise self._dead_error(what) from None
            raise self.error(
                f"{self.label} did not finish {description!r} within {timeout_s:g} s even after "
                f"the remote-side timeout; the {self.kind} is unresponsive{self._console_note()}"
            ) from None
        except Exception as exc:  # paramiko/socket errors: the link died
            self.close()
            if self._died():
                raise self._dead_error(what) from exc
            raise self.error(
                f"lost the SSH connection to {self.label} {what}: {type(exc).__name__}: {exc}"
            ) from exc
        if status < 0:
            self.close()
            if self._died():
                raise self._dead_error(what)
            raise self.error(f"{self.label} closed the connection {what} without an exit status")
        return status, stdout, stderr

    def run(self, command: str, timeout_s: float) -> CommandResult:
        """Run ``command`` (sh syntax), killed after ``timeout_s``.

        The remote-side ``timeout`` makes a command that runs too long exit
        with status 124 (137 if it ignored SIGTERM).
        """
        status, out, err = self._execute(
            remote_command(command, timeout_s), command, timeout_s, None
        )
        return CommandResult(status, out.decode(errors="replace"), err.decode(errors="replace"))

    def run_script(self, script: str, timeout_s: float) -> CommandResult:
        """Send ``script`` on stdin to one ``sh -s`` (one SSH command)."""
        first = next((line for line in script.splitlines() if line.strip()), "")
        status, out, err = self._execute(
            script_command(timeout_s), f"sh script ({first[:40]}...)", timeout_s, script.encode()
        )
        return CommandResult(status, out.decode(errors="replace"), err.decode(errors="replace"))

    # ------------------------------------------------------------ transfers

    def _sftp(self, what: str):
        connection = self._ensure(what)
        sftp = connection.sftp()
        sftp.get_channel().settimeout(SFTP_TIMEOUT_S)
        return connection

    def put(self, local_path: Path | str, remote_path: str) -> None:
        """Copy a file with SFTP (guests; remote machines use :meth:`put_stream`)."""
        what = f"while copying {local_path} to {remote_path}"
        if not Path(local_path).is_file():
            raise self.error(f"cannot copy {local_path} to {self.label}: no such file")
        self._transfer(
            what, lambda sftp: sftp.put(str(local_path), remote=remote_path, preserve_mode=True)
        )

    def get(self, remote_path: str, local_path: Path | str) -> None:
        what = f"while copying {remote_path} from the {self.kind} to {local_path}"
        Path(local_path).parent.mkdir(parents=True, exist_ok=True)
        self._transfer(
            what, lambda sftp: sftp.get(remote_path, local=str(local_path), preserve_mode=True)
        )

    def _transfer(self, what: str, copy: Callable[[Any], Any]) -> None:
        """Run one SFTP copy; a failure names the machine, and a dead one says so."""
        try:
            copy(self._sftp(what))
        except DamonEvalError:
            raise
        except Exception as exc:
            self.close()
            if self._died():
                raise self._dead_error(what) from exc
            raise self.error(f"{self.label}: failed {what}: {exc}") from exc

    def put_stream(self, local_path: Path | str, remote_path: str, timeout_s: float) -> None:
        """Copy a file through ``cat`` on one SSH command (no SFTP server needed).

        The file is written next to its destination and renamed into place,
        with the local file's permission bits; parent directories are created.
        """
        local_path = Path(local_path)
        if not local_path.is_file():
            raise self.error(f"cannot copy {local_path} to {self.label}: no such file")
        mode = f"{local_path.stat().st_mode & 0o7777:o}"
        dest = shlex.quote(remote_path)
        command = (
            f'set -e; mkdir -p -- "$(dirname -- {dest})"; t={dest}.part.$$; '
            f'cat > "$t"; chmod {mode} "$t"; mv -f -- "$t" {dest}'
        )
        with local_path.open("rb") as data:
            status, _, err = self._execute(
                remote_command(command, timeout_s), f"upload {remote_path}", timeout_s, data
            )
        if status != 0:
            raise self.error(
                f"{self.label}: copying {local_path} to {remote_path} failed (exit {status}): "
                f"{err.decode(errors='replace').strip()[-300:]}"
            )

    def get_stream(self, remote_path: str, local_path: Path | str, timeout_s: float) -> None:
        """Copy a file from the machine through ``cat`` (no SFTP server needed).

        The bytes go to ``<local>.part`` and are renamed when complete.
        """
        local_path = Path(local_path)
        local_path.parent.mkdir(parents=True, exist_ok=True)
        partial = local_path.with_name(local_path.name + ".part")
        try:
            with partial.open("wb") as sink:
                status, _, err = self._execute(
                    remote_command(f"cat -- {shlex.quote(remote_path)}", timeout_s),
                    f"download {remote_path}",
                    timeout_s,
                    None,
                    stdout_sink=sink,
                )
            if status != 0:
                raise self.error(
                    f"{self.label}: copying {remote_path} to {local_path} failed (exit "
                    f"{status}): {err.decode(errors='replace').strip()[-300:]}"
                )
            partial.replace(local_path)
        finally:
            partial.unlink(missing_ok=True)

    # ---------------------------------------------------------- interactive

    def interactive_shell(self) -> int:
        """An interactive login shell on a pty (the terminal in raw mode); its exit status."""
        from damon_eval.machines.terminal import relay_terminal

        connection = self._ensure("opening a shell")
        channel = connection.transport.open_session(timeout=SESSION_OPEN_TIMEOUT_S)

        def check_alive() -> None:
            if not self._alive():
                raise self._dead_error("during the interactive shell")

        return relay_terminal(channel, check_alive)
