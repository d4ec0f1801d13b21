"""Atomic file writes: a reader sees the old file or the whole new one, never half."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from damon_eval.errors import OutputError


@contextmanager
def atomic_open(path: Path, mode: str = "wb", *, suffix: str = ".tmp") -> Iterator[IO[Any]]:
    """A file object for ``path`` opened in ``mode`` ("wb" or "w"): what is written
    appears at ``path`` only when the block ends without an exception (fsync, rename,
    fsync of the directory); otherwise the temporary file is removed.

    An OS error of creating, flushing or renaming the file becomes an
    :class:`OutputError` naming ``path``; one raised inside the block passes as it is
    (the block's writes are buffered, so a full disk shows at the flush).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    except OSError as exc:
        raise _output_error(path, exc) from exc
    body_done = False
    try:
        with os.fdopen(fd, mode) as tmp:
            yield tmp
            body_done = True
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException as exc:
        Path(tmp_name).unlink(missing_ok=True)
        if body_done and isinstance(exc, OSError):
            raise _output_error(path, exc) from exc
        raise


def _output_error(path: Path, exc: OSError) -> OutputError:
    return OutputError(f"cannot write {path}: {exc.strerror or exc}")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_open(path, "wb") as out:
        out.write(data)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")
