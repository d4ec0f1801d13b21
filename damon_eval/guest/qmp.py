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


class QmpError(GuestError):
    """QEMU's monitor refused a command, closed, or did not answer in time."""


class QmpClient:
    """One QMP session (use :meth:`connect`)."""

    def __init__(self, sock: socket.socket, path: Path) -> None:
        self._sock = sock
        self._path = path
        self._buffer = b""
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
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(str(path))
                break
            except (FileNotFoundError, ConnectionRefusedError) as exc:
                sock.close()
                if not alive():
                    raise QmpError(f"QEMU exited before its monitor {path} came up") from exc
                if time.monotonic() >= deadline:
                    raise QmpError(f"QMP socket {path} did not accept connections: {exc}") from exc
                time.sleep(0.05)
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
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise QmpError(f"QEMU did not answer on {self._path} in time")
            self._sock.settimeout(remaining)
            try:
                chunk = self._sock.recv(65536)
            except TimeoutError:
                continue
            except OSError as exc:
                raise QmpError(f"QMP connection {self._path} failed: {exc}") from exc
            if not chunk:
                raise QmpError(f"QEMU closed its monitor {self._path} (did it exit?)")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
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
