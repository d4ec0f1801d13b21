"""Text lines from a byte stream with a deadline on every read, and unix-socket connects
that wait for the server.

QEMU's monitor (QMP), the guest's virtio-serial control port and the agent's file
descriptors all carry newline-terminated messages; a dead or wedged other end must
raise instead of hanging, so no read here blocks past its deadline.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path

from damon_eval.errors import GuestError

# receive(remaining_s): the bytes that came within remaining_s, None when none came
# (yet), b"" at end of file.
Receive = Callable[[float], bytes | None]


class LineTimeout(GuestError):
    """No complete line by the deadline; ``partial`` holds what came of the next one."""

    def __init__(self, partial: bytes) -> None:
        super().__init__(f"no complete line in time (partial: {partial[-80:]!r})")
        self.partial = partial


class LineEOF(GuestError):
    """The other end closed before a complete line."""


class NotListening(GuestError):
    """Nothing accepted connections on a unix socket in time; ``gone`` when the
    server's process exited meanwhile, ``cause`` the last connect error."""

    def __init__(self, path: Path, cause: OSError, gone: bool) -> None:
        what = "its server exited" if gone else f"no connection: {cause}"
        super().__init__(f"unix socket {path}: {what}")
        self.cause = cause
        self.gone = gone


class DeadlineLines:
    """Buffered lines from ``receive``; the bytes after the last newline wait for the
    next :meth:`read_line`."""

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self._buffer = b""

    def read_line(self, deadline: float) -> bytes:
        """The next line without its newline, by ``deadline`` (``time.monotonic()``).

        Raises :class:`LineTimeout` or :class:`LineEOF`; errors of ``receive`` pass.
        """
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LineTimeout(self._buffer)
            chunk = self._receive(remaining)
            if chunk is None:
                continue
            if not chunk:
                raise LineEOF(f"end of file after {len(self._buffer)} bytes of a line")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line


def socket_lines(sock: socket.socket, chunk_size: int = 65536) -> DeadlineLines:
    """Lines from a stream socket; its timeout is set before every ``recv``."""

    def receive(remaining: float) -> bytes | None:
        sock.settimeout(remaining)
        try:
            return sock.recv(chunk_size)
        except TimeoutError:
            return None

    return DeadlineLines(receive)


def connect_unix(
    path: Path, deadline: float, alive: Callable[[], bool] = lambda: True
) -> socket.socket:
    """A stream socket connected to ``path``, retried while its server creates it.

    Raises :class:`NotListening` at ``deadline``, or as soon as ``alive()`` is false.
    """
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(str(path))
            return sock
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            sock.close()
            if not alive():
                raise NotListening(path, exc, gone=True) from exc
            if time.monotonic() >= deadline:
                raise NotListening(path, exc, gone=False) from exc
            time.sleep(0.05)
