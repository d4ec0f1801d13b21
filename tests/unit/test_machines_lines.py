"""The deadline-bounded line reader and the waiting unix connect, over real sockets."""

from __future__ import annotations

import contextlib
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import pytest

from damon_eval.errors import GuestError
from damon_eval.machines.lines import (
    DeadlineLines,
    LineEOF,
    LineTimeout,
    NotListening,
    connect_unix,
    socket_lines,
)


def _hang_up(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_WR)


@pytest.fixture
def pair():
    ours, theirs = socket.socketpair()
    # Watchdog: the other end hangs up after 5 s, so a reader that ignores its
    # deadline fails with LineEOF instead of hanging the suite.
    watchdog = threading.Timer(5, _hang_up, (theirs,))
    watchdog.start()
    yield ours, theirs
    watchdog.cancel()
    ours.close()
    theirs.close()


def _soon(seconds: float = 0.2) -> float:
    return time.monotonic() + seconds


def test_lines_come_one_at_a_time_and_the_rest_waits(pair):
    ours, theirs = pair
    lines = socket_lines(ours)
    theirs.sendall(b"one\ntwo\nthr")
    assert lines.read_line(_soon(2)) == b"one"
    assert lines.read_line(_soon(2)) == b"two"
    theirs.sendall(b"ee\n")
    assert lines.read_line(_soon(2)) == b"three"


def test_a_line_split_across_many_sends_is_joined(pair):
    ours, theirs = pair
    lines = socket_lines(ours, chunk_size=2)

    def trickle():
        for piece in (b"ab", b"cd", b"e\nf"):
            theirs.sendall(piece)
            time.sleep(0.02)

    thread = threading.Thread(target=trickle)
    thread.start()
    assert lines.read_line(_soon(5)) == b"abcde"
    thread.join(5)
    theirs.sendall(b"\n")
    assert lines.read_line(_soon(2)) == b"f"


def test_silence_raises_at_the_deadline_with_the_partial_line(pair):
    ours, theirs = pair
    lines = socket_lines(ours)
    theirs.sendall(b"half a li")
    # Without the deadline this recv would block for ever: the other end stays open.
    with pytest.raises(LineTimeout) as caught:
        lines.read_line(_soon(0.2))
    assert caught.value.partial == b"half a li"
    assert "half a li" in str(caught.value)
    assert isinstance(caught.value, GuestError)
    # What came stays buffered for the next read.
    theirs.sendall(b"ne\n")
    assert lines.read_line(_soon(2)) == b"half a line"


def test_a_passed_deadline_reads_nothing_even_with_data_waiting(pair):
    ours, theirs = pair
    lines = socket_lines(ours)
    theirs.sendall(b"ready\n")
    with pytest.raises(LineTimeout):
        lines.read_line(time.monotonic() - 1)
    assert lines.read_line(_soon(2)) == b"ready"


def test_a_complete_buffered_line_needs_no_receive():
    calls = []
    lines = DeadlineLines(lambda remaining: calls.append(remaining) or b"a\nb\n")
    assert lines.read_line(_soon(2)) == b"a"
    assert lines.read_line(time.monotonic() - 1) == b"b"
    assert len(calls) == 1


def test_a_receive_that_never_delivers_stops_at_the_deadline():
    remaining_seen = []

    def nothing(remaining: float) -> None:
        remaining_seen.append(remaining)
        # ~10 calls fit in the deadline; an ignored one fails here, not by hanging
        assert len(remaining_seen) < 1000, "deadline ignored"
        time.sleep(min(remaining, 0.01))

    with pytest.raises(LineTimeout):
        DeadlineLines(nothing).read_line(_soon(0.1))
    # every wait is bounded by what is left of the deadline
    assert remaining_seen and all(0 < r <= 0.1 for r in remaining_seen)


def test_end_of_file_before_a_newline_is_reported(pair):
    ours, theirs = pair
    lines = socket_lines(ours)
    theirs.sendall(b"last\nunfinished")
    theirs.close()
    assert lines.read_line(_soon(2)) == b"last"
    with pytest.raises(LineEOF, match="10 bytes"):
        lines.read_line(_soon(2))


def test_receive_errors_pass_through(pair):
    ours, _ = pair
    lines = socket_lines(ours)
    ours.close()
    with pytest.raises(OSError):
        lines.read_line(_soon(2))


@pytest.fixture
def sock_dir():
    # unix socket paths are limited to 108 bytes; pytest's tmp_path can be longer.
    path = Path(tempfile.mkdtemp(prefix="de-lines-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_connect_waits_for_the_server_to_listen(sock_dir):
    path = sock_dir / "late.sock"
    listener = socket.socket(socket.AF_UNIX)

    def listen_late():
        time.sleep(0.2)
        listener.bind(str(path))
        listener.listen(1)

    thread = threading.Thread(target=listen_late)
    thread.start()
    sock = connect_unix(path, _soon(10))
    thread.join(5)
    conn, _ = listener.accept()
    conn.sendall(b"hello\n")
    assert socket_lines(sock).read_line(_soon(2)) == b"hello"
    for s in (sock, conn, listener):
        s.close()


def test_connect_gives_up_at_the_deadline_or_when_the_server_is_gone(sock_dir):
    path = sock_dir / "never.sock"
    with pytest.raises(NotListening) as caught:
        connect_unix(path, _soon(0.2))
    assert not caught.value.gone and isinstance(caught.value.cause, FileNotFoundError)
    checks = []
    with pytest.raises(NotListening) as caught:
        connect_unix(path, _soon(60), alive=lambda: checks.append(1) and False)
    assert caught.value.gone and checks == [1]
