"""A minimal synchronous QMP client over a unix socket, with deadlines.

QMP is JSON lines: a greeting, ``qmp_capabilities``, then commands answered by
``{"return": ...}`` or ``{"error": ...}``, interleaved with ``{"event": ...}``
messages (kept in :attr:`QmpClient.events`).  Every read has a deadline, so a
dead or wedged QEMU raises :class:`QmpError` instead of hanging.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from damon_eval.errors import GuestError
from damon_eval.machines.lines import LineEOF, LineTimeout, NotListening, connect_unix, socket_lines


class QmpError(GuestError):
    """QEMU's monitor refused a command, closed, or did not answer in time."""


class QmpClient:
    """One QMP session (use :meth:`connect`)."""

    def __init__(self, sock: socket.socket, path: Path) -> None:
        self._sock = sock
        self._path = path
        self._lines = socket_lines(sock)
        self.events: list[dict[str, Any]] = []
        self.greeting: dict[str, Any] = {}

    @classmethod
    def connect(
        cls, path: Path, timeout_s: float = 10.0, alive: Callable[[], bool] = lambda: True
    ) -> QmpClient:
        """Connect (retrying while QEMU creates the socket) and negotiate capabilities.

        ``alive`` tells whether QEMU still runs; the wait stops when it does not.
        """
        deadline = time.monotonic() + timeout_s
        try:
            sock = connect_unix(path, deadline, alive)
        except NotListening as exc:
            if exc.gone:
                raise QmpError(f"QEMU exited before its monitor {path} came up") from exc
            raise QmpError(f"QMP socket {path} did not accept connections: {exc.cause}") from exc
        client = cls(sock, path)
        try:
            client._negotiate(deadline)
        except BaseException:
            client.close()
            raise
        return client

    def _negotiate(self, deadline: float) -> None:
        self.greeting = self._read_message(deadline)
        # An event QEMU emits while the client connects (RESUME at start-up) can
        # come before the greeting: keep it as an event and read on.
        while "event" in self.greeting:
            self.events.append(self.greeting)
            self.greeting = self._read_message(deadline)
        if "QMP" not in self.greeting:
            raise QmpError(f"unexpected QMP greeting on {self._path}: {self.greeting}")
        self.command("qmp_capabilities", timeout_s=max(1.0, deadline - time.monotonic()))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()

    def __enter__(self) -> QmpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read_message(self, deadline: float) -> dict[str, Any]:
        try:
            line = self._lines.read_line(deadline)
        except LineTimeout:
            raise QmpError(f"QEMU did not answer on {self._path} in time") from None
        except LineEOF:
            raise QmpError(f"QEMU closed its monitor {self._path} (did it exit?)") from None
        except OSError as exc:
            raise QmpError(f"QMP connection {self._path} failed: {exc}") from exc
        return json.loads(line)

    def command(self, name: str, timeout_s: float = 10.0, **arguments: Any) -> Any:
        """Run one command; return its ``return`` value or raise :class:`QmpError`."""
        message: dict[str, Any] = {"execute": name}
        if arguments:
            message["arguments"] = arguments
        try:
            self._sock.sendall(json.dumps(message).encode() + b"\n")
        except OSError as exc:
            raise QmpError(f"cannot send {name} to QEMU ({self._path}): {exc}") from exc
        deadline = time.monotonic() + timeout_s
        while True:
            reply = self._read_message(deadline)
            if "event" in reply:
                self.events.append(reply)
                continue
            if "error" in reply:
                error = reply["error"]
                raise QmpError(f"QEMU refused {name}: {error.get('desc', error)}")
            if "return" in reply:
                return reply["return"]

    def wait_event(self, name: str, timeout_s: float) -> dict[str, Any]:
        """Wait for an event (already received ones count)."""
        for index, event in enumerate(self.events):
            if event.get("event") == name:
                return self.events.pop(index)
        deadline = time.monotonic() + timeout_s
        while True:
            reply = self._read_message(deadline)
            if reply.get("event") == name:
                return reply
            if "event" in reply:
                self.events.append(reply)
