"""One way to reach sysfs, procfs, debugfs and tracefs: the :class:`FileSystem`.

Every kernel-interface read and write of the harness goes through one of these
objects, so the same controller code drives

* the local machine (:class:`LocalFs`, root ``/``),
* a fake kernel tree in a temporary directory (:class:`LocalFs` with another
  root; the tests use it), and
* a guest or remote machine (:class:`ShellFs`), where a whole batch of
  operations becomes *one* POSIX shell script sent over *one* SSH command, so
  the remote side needs nothing but ``sh``, ``cat`` and ``base64`` and no
  resident process at all.

Paths are always the target machine's absolute paths (``/sys/kernel/...``); the
root is prepended by the implementation.  Writes never create files: like
sysfs, writing to a path that does not exist fails with ENOENT.

Operations are small frozen dataclasses; :meth:`FileSystem.execute` runs a list
of them in order, stops at the first failure and raises :class:`FsError`
carrying the errno, the failing operation's index and the results of the
operations before it.  The ``...IfExists`` operations let one batch read or
write files whose existence is not known in advance (a probe of a machine, an
optional sysfs file), so what needs the answer of an earlier batch is rare.
"""

from __future__ import annotations

import base64
import errno as errno_mod
import os
import secrets
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from damon_eval.errors import FsError


@dataclass(frozen=True, slots=True)
class Read:
    """Read a file; the result is its text without trailing newlines."""

    path: str


@dataclass(frozen=True, slots=True)
class Write:
    """Write ``value`` to an existing file; the result is ``None``."""

    path: str
    value: str


@dataclass(frozen=True, slots=True)
class Exists:
    """Whether a path exists; the result is a bool."""

    path: str


@dataclass(frozen=True, slots=True)
class ListDir:
    """Sorted names in a directory; the result is a list of str."""

    path: str


@dataclass(frozen=True, slots=True)
class MakeDir:
    """Create one directory (tracefs instances are made this way); result ``None``."""

    path: str


@dataclass(frozen=True, slots=True)
class RemoveDir:
    """Remove one empty directory (removes a tracefs instance); result ``None``."""

    path: str


@dataclass(frozen=True, slots=True)
class ReadIfExists:
    """Read a file if it exists; the result is its text (as :class:`Read`) or None."""

    path: str


@dataclass(frozen=True, slots=True)
class WriteIfExists:
    """Write ``value`` if the file exists; the result is whether it was written.

    A write to an existing file that fails still fails the batch."""

    path: str
    value: str


@dataclass(frozen=True, slots=True)
class ListDirIfExists:
    """Sorted names in a directory if it exists, else None."""

    path: str


Op = (
    Read
    | Write
    | Exists
    | ListDir
    | MakeDir
    | RemoveDir
    | ReadIfExists
    | WriteIfExists
    | ListDirIfExists
)


def _check_absolute(path: str) -> None:
    if not path.startswith("/"):
        raise FsError(f"path must be absolute: {path!r}", path=path, errno=errno_mod.EINVAL)


class FileSystem:
    """The interface; subclasses implement :meth:`execute`."""

    description = "abstract"

    def execute(self, ops: Sequence[Op]) -> list[Any]:
        raise NotImplementedError

    # Single-operation conveniences.  Each is one round trip on a remote.
    def read(self, path: str) -> str:
        return self.execute([Read(path)])[0]

    def write(self, path: str, value: str | int) -> None:
        self.execute([Write(path, str(value))])

    def exists(self, path: str) -> bool:
        return self.execute([Exists(path)])[0]

    def listdir(self, path: str) -> list[str]:
        return self.execute([ListDir(path)])[0]

    def mkdir(self, path: str) -> None:
        self.execute([MakeDir(path)])

    def rmdir(self, path: str) -> None:
        self.execute([RemoveDir(path)])

    def read_many(self, paths: Sequence[str]) -> dict[str, str]:
        """Read several files in one batch."""
        return dict(zip(paths, self.execute([Read(p) for p in paths]), strict=True))

    def read_optional(self, paths: Sequence[str]) -> dict[str, str | None]:
        """Read the files that exist in one batch; missing ones map to None."""
        if not paths:
            return {}
        return dict(zip(paths, self.execute([ReadIfExists(p) for p in paths]), strict=True))


def _errno_from_message(message: str) -> int | None:
    """Recover an errno from a strerror text inside a shell or OS message."""
    for code in (
        errno_mod.EBUSY,
        errno_mod.EACCES,
        errno_mod.EPERM,
        errno_mod.ENOENT,
        errno_mod.EINVAL,
        errno_mod.ENOMEM,
        errno_mod.ESRCH,
        errno_mod.ENOTDIR,
        errno_mod.EISDIR,
        errno_mod.EROFS,
        errno_mod.ENODEV,
        errno_mod.EEXIST,
        errno_mod.EAGAIN,
        errno_mod.ENOSPC,
        errno_mod.EIO,
    ):
        if os.strerror(code) in message:
            return code
    return None


def _describe(op: Op, err: int | None, detail: str) -> str:
    verb = {
        Read: "read",
        Write: "write",
        Exists: "stat",
        ListDir: "list",
        MakeDir: "create directory",
        RemoveDir: "remove directory",
        ReadIfExists: "read",
        WriteIfExists: "write",
        ListDirIfExists: "list",
    }[type(op)]
    what = f"{verb} {op.path}"
    if isinstance(op, Write | WriteIfExists):
        what = f"write {op.value!r} to {op.path}"
    reason = os.strerror(err) if err is not None else detail.strip() or "failed"
    return f"cannot {what}: {reason}"


@dataclass
class LocalFs(FileSystem):
    """Direct file I/O below ``root`` (``/`` for the local machine).

    ``write_hook`` lets a fake kernel react to writes (the tests' fake DAMON
    creates directories when ``nr_*`` files are written, refuses with EBUSY,
    and so on).  It is called after the bytes are written and may raise
    :class:`OSError` to fail the write.
    """

    root: Path = Path("/")
    write_hook: Callable[[str, str], None] | None = None
    description: str = field(default="local", init=False)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        if str(self.root) != "/":
            self.description = f"local:{self.root}"

    def host_path(self, path: str) -> Path:
        _check_absolute(path)
        return self.root / PurePosixPath(path).relative_to("/")

    def execute(self, ops: Sequence[Op]) -> list[Any]:
        values: list[Any] = []
        for op in ops:
            try:
                values.append(self._one(op))
            except FsError as exc:
                exc.index, exc.completed = len(values), tuple(values)
                raise
        return values

    def _one(self, op: Op) -> Any:
        target = self.host_path(op.path)
        # The conditional forms go through _one again so that subclasses (the
        # tests' fake kernel) see a plain Read/Write/ListDir.
        if isinstance(op, ReadIfExists):
            return self._one(Read(op.path)) if target.exists() else None
        if isinstance(op, WriteIfExists):
            if not target.exists():
                return False
            self._one(Write(op.path, op.value))
            return True
        if isinstance(op, ListDirIfExists):
            return self._one(ListDir(op.path)) if target.exists() else None
        try:
            if isinstance(op, Read):
                return target.read_text().rstrip("\n")
            if isinstance(op, Write):
                # No O_CREAT: a missing file is ENOENT, as on sysfs.
                fd = os.open(target, os.O_WRONLY | os.O_TRUNC)
                try:
                    os.write(fd, op.value.encode())
                finally:
                    os.close(fd)
                if self.write_hook is not None:
                    self.write_hook(op.path, op.value)
                return None
            if isinstance(op, Exists):
                return target.exists()
            if isinstance(op, ListDir):
                return sorted(os.listdir(target))
            if isinstance(op, MakeDir):
                os.mkdir(target)
                if self.write_hook is not None:
                    self.write_hook(op.path, "")
                return None
            if isinstance(op, RemoveDir):
                os.rmdir(target)
                return None
        except OSError as exc:
            raise FsError(
                _describe(op, exc.errno, str(exc)), path=op.path, errno=exc.errno
            ) from exc
        raise TypeError(f"unknown operation {op!r}")


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What running a shell script returned."""

    exit_status: int
    stdout: str
    stderr: str


ScriptRunner = Callable[[str], CommandResult]
"""Runs a POSIX shell script (given as text) on the target and returns its result."""


# Only shell builtins on the success path: under TCG every fork costs ~80 ms,
# so a batch of 60 reads with `cat | base64` took seconds.  Values and
# listings are framed by "<nonce> val|ls" ... "<nonce> end" lines (a random
# nonce cannot occur in sysfs text); errors, rare, may fork.  The script runs
# under bash when the target has it: dash's builtin printf reports every failed
# write as "I/O error", losing the kernel's errno (DAMON's EBUSY, EINVAL at
# "on"), where bash says "write error: <strerror>".
_SCRIPT_PRELUDE = r"""
T=/tmp/.damon-eval-fs.$$
trap 'rm -f "$T"' EXIT
o() { printf '%s %s\n' "$N" "$*"; }
fail() { o err "$(printf '%s' "$1" | base64 | tr -d '\n')"; exit 0; }
r() {
  [ -e "$1" ] || fail "$1: No such file or directory"
  [ ! -d "$1" ] || fail "$1: Is a directory"
  o val
  n=0
  if { while IFS= read -r l || [ -n "$l" ]; do n=1; printf '%s\n' "$l"; done < "$1"; } 2>"$T"
  then
    # Nothing read: an empty file, a read error `read` cannot tell from EOF, or a file
    # that fails reads shorter than its text (debugfs damon/schemes: bash's `read`
    # reads byte by byte, the kernel answers ENOMEM); cat reads in large blocks.
    if [ "$n" = 0 ]; then
      c=$(cat -- "$1" 2>"$T") || rf
      [ -z "$c" ] || printf '%s\n' "$c"
    fi
    o end
  else rf; fi
}
rf() { o fail "$(base64 < "$T" | tr -d '\n')"; exit 0; }
w() {
  [ -e "$1" ] || fail "$1: No such file or directory"
  if printf '%s' "$2" 2>"$T" > "$1"; then o ok; else fail "$(cat "$T")"; fi
}
e() { if [ -e "$1" ]; then o yes; else o no; fi; }
l() {
  [ -d "$1" ] || fail "$1: No such file or directory"
  o ls
  for f in "$1"/* "$1"/.[!.]* "$1"/..?*; do
    if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\n' "${f##*/}"; fi
  done
  o end
}
m() { if mkdir -- "$1" 2>"$T"; then o ok; else fail "$(cat "$T")"; fi; }
d() { if rmdir -- "$1" 2>"$T"; then o ok; else fail "$(cat "$T")"; fi; }
R() { if [ -e "$1" ]; then r "$1"; else o none; fi; }
W() { if [ -e "$1" ]; then w "$1" "$2"; else o none; fi; }
L() { if [ -e "$1" ]; then l "$1"; else o none; fi; }
"""


# The prelude's shell function for each operation.
_SCRIPT_VERBS: dict[type, str] = {
    Read: "r",
    Write: "w",
    Exists: "e",
    ListDir: "l",
    MakeDir: "m",
    RemoveDir: "d",
    ReadIfExists: "R",
    WriteIfExists: "W",
    ListDirIfExists: "L",
}


@dataclass
class ShellFs(FileSystem):
    """Batches operations into one POSIX shell script run by ``runner``.

    ``root`` is prepended to every path (tests run the script locally against
    a fake tree; guests use ``/``).
    """

    runner: ScriptRunner
    root: str = "/"
    description: str = "shell"

    def script_for(self, ops: Sequence[Op], nonce: str) -> str:
        lines = [f"N={nonce}", _SCRIPT_PRELUDE]
        for op in ops:
            _check_absolute(op.path)
            verb = _SCRIPT_VERBS.get(type(op))
            if verb is None:
                raise TypeError(f"unknown operation {op!r}")
            words = [verb, shlex.quote(self._rooted(op.path))]
            if isinstance(op, Write | WriteIfExists):
                words.append(shlex.quote(op.value))
            lines.append(" ".join(words))
        body = "\n".join(lines) + "\n"
        return (
            "S=sh; command -v bash >/dev/null 2>&1 && S=bash\n"
            f"exec \"$S\" -s <<'{nonce}_END'\n{body}{nonce}_END\n"
        )

    def _rooted(self, path: str) -> str:
        if self.root in ("", "/"):
            return path
        return self.root.rstrip("/") + path

    def execute(self, ops: Sequence[Op]) -> list[Any]:
        if not ops:
            return []
        nonce = "DE" + secrets.token_hex(6)
        result = self.runner(self.script_for(ops, nonce))
        values: list[Any] = []
        for op, (kind, payload) in zip(ops, _answers(result.stdout, nonce), strict=False):
            if kind == "err":
                detail = base64.b64decode(payload).decode(errors="replace")
                err = _errno_from_message(detail)
                raise FsError(
                    _describe(op, err, detail),
                    path=op.path,
                    errno=err,
                    index=len(values),
                    completed=tuple(values),
                )
            values.append(_decode_answer(op, kind, payload))
        if len(values) != len(ops):
            tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
            raise FsError(
                f"{self.description}: batch of {len(ops)} operations stopped after "
                f"{len(values)} (exit status {result.exit_status}): {tail[0]}",
                path=ops[len(values)].path,
                index=len(values),
                completed=tuple(values),
            )
        return values


def _answers(stdout: str, nonce: str) -> list[tuple[str, str]]:
    """(kind, payload) per operation; framed values are joined into the payload."""
    marker = nonce + " "
    answers: list[tuple[str, str]] = []
    framed: list[str] | None = None
    kind = ""
    for line in stdout.split("\n"):
        if framed is not None:
            if line == marker + "end":
                answers.append((kind, "\n".join(framed)))
                framed = None
            elif line.startswith(marker + "fail "):
                # the read failed part-way: an error in place of the value
                answers.append(("err", line[len(marker) + 5 :]))
                framed = None
            else:
                framed.append(line)
        elif line.startswith(marker):
            kind, _, payload = line[len(marker) :].partition(" ")
            if kind in ("val", "ls"):
                framed = []
            else:
                answers.append((kind, payload))
    return answers


def _decode_answer(op: Op, kind: str, payload: str) -> Any:
    if isinstance(op, WriteIfExists):
        if kind == "none":
            return False
        _decode_answer(Write(op.path, op.value), kind, payload)
        return True
    if isinstance(op, ReadIfExists):
        return None if kind == "none" else _decode_answer(Read(op.path), kind, payload)
    if isinstance(op, ListDirIfExists):
        return None if kind == "none" else _decode_answer(ListDir(op.path), kind, payload)
    expected = {Read: "val", Write: "ok", ListDir: "ls", MakeDir: "ok", RemoveDir: "ok"}.get(
        type(op)
    )
    if isinstance(op, Exists):
        if kind not in ("yes", "no"):
            raise FsError(f"unexpected answer {kind!r} to stat {op.path}", path=op.path)
        return kind == "yes"
    if kind != expected:
        raise FsError(f"unexpected answer {kind!r} for {op.path}", path=op.path)
    if isinstance(op, Write | MakeDir | RemoveDir):
        return None
    if isinstance(op, ListDir):
        return sorted(payload.split("\n")) if payload else []
    return payload.rstrip("\n")


def local_sh_runner(script: str, timeout_s: float = 60) -> CommandResult:
    """Run a script with the local ``sh`` (tests, and ``--local`` mode)."""
    import subprocess

    # Bytes, not text=True: universal newlines would turn a value's \r into \n.
    proc = subprocess.run(
        ["sh", "-s"], input=script.encode(), capture_output=True, timeout=timeout_s, check=False
    )
    return CommandResult(
        proc.returncode,
        proc.stdout.decode(errors="replace"),
        proc.stderr.decode(errors="replace"),
    )
