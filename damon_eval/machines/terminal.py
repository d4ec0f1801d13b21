"""This terminal joined to a remote shell's pty (``damon-eval guest shell``)."""

from __future__ import annotations

import os
import select
import sys
from collections.abc import Callable
from typing import Any


def relay_terminal(channel: Any, check_alive: Callable[[], None]) -> int:
    """Run a login shell on ``channel`` (a paramiko channel) with a pty of this
    terminal's size, this terminal in raw mode, until it exits; its exit status.
    ``check_alive`` raises when the machine died meanwhile."""
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
            check_alive()
    finally:
        if saved is not None:
            import termios

            termios.tcsetattr(stdin_fd, termios.TCSADRAIN, saved)
    status = channel.recv_exit_status()
    channel.close()
    return status
