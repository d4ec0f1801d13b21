"""The host end of the guest's control channel (a virtio-serial port).

QEMU exposes the port ``org.damon-eval.ctl`` to the guest as
``/dev/virtio-ports/org.damon-eval.ctl`` and to the host as a unix socket.
The measurement agent in the guest reads "go" from it and writes "done" to
it, so no SSH session needs to be open while a measurement runs.  Messages
are text lines.

Data the host sends before the guest opens the port waits in QEMU (the port
is not readable until the guest opens it), and data the guest writes waits in
the socket until :meth:`ControlChannel.read_line` reads it.
"""

from __future__ import annotations

import contextlib
import socket
import time
from pathlib import Path

from damon_eval.errors import GuestError
from damon_eval.machines.lines import LineEOF, LineTimeout, NotListening, connect_unix, socket_lines


class ControlTimeout(GuestError):
    """No complete line arrived in time (the channel itself is fine)."""


class ControlChannel:
    """Line-oriented host end of the virtio-serial control port."""

    def __init__(self, sock: socket.socket, path: Path, guest_name: str = "guest") -> None:
        self._sock = sock
        self._path = path
        self._lines = socket_lines(sock, 4096)
        self._guest_name = guest_name

    @classmethod
    def connect(
        cls, path: Path, timeout_s: float = 10.0, guest_name: str = "guest"
    ) -> ControlChannel:
        try:
            sock = connect_unix(path, time.monotonic() + timeout_s)
        except NotListening as exc:
            raise GuestError(
                f"control channel {path} of {guest_name} did not accept connections: {exc.cause}"
            ) from exc
        return cls(sock, path, guest_name)

    def send_line(self, text: str) -> None:
        """Send one line (a newline is appended; ``text`` must not contain one)."""
        if "\n" in text:
            raise GuestError(f"control messages are single lines, got {text!r}")
        try:
            self._sock.sendall(text.encode() + b"\n")
        except OSError as exc:
            raise GuestError(
                f"cannot send {text!r} on the control channel of {self._guest_name}: {exc}"
            ) from exc

    def read_line(self, timeout_s: float) -> str:
        """The next line from the guest (without its newline).

        Raises :class:`GuestError` when nothing complete arrives within
        ``timeout_s`` or the channel closed (QEMU exited).
        """
        try:
            line = self._lines.read_line(time.monotonic() + timeout_s)
        except LineTimeout as exc:
            raise ControlTimeout(
                f"no line from {self._guest_name} on the control channel within "
                f"{timeout_s:g} s (partial: {exc.partial[-80:]!r})"
            ) from None
        except LineEOF:
            raise GuestError(
                f"control channel of {self._guest_name} closed (did QEMU exit?)"
            ) from None
        except OSError as exc:
            raise GuestError(f"control channel of {self._guest_name} failed: {exc}") from exc
        return line.decode(errors="replace").rstrip("\r")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()
