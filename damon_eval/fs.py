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
carrying the errno.
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


Op = Read | Write | Exists | ListDir | MakeDir | RemoveDir


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
        """Read the files that exist, in two round trips at most; missing ones map to None."""
        present = self.execute([Exists(p) for p in paths])
        wanted = [p for p, ok in zip(paths, present, strict=True) if ok]
        values = self.read_many(wanted) if wanted else {}
        return {p: values.get(p) for p in paths}


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
    }[type(op)]
    what = f"{verb} {op.path}"
    if isinstance(op, Write):
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
        return [self._one(op) for op in ops]

    def _one(self, op: Op) -> Any:
        target = self.host_path(op.path)
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


# The batch script avoids starting programs: under TCG one exec costs ~100 ms,
# so the old ``$(cat f | base64)`` reads cost ~180 ms each.  Values travel as
# ``<nonce> + <line>`` lines ended by the op's answer; reads and listings use
# shell builtins only; ``cat`` runs only to name the error of a read that
# yielded nothing.  The script runs under bash when the target has it: dash's
# builtin printf reports every failed write as "I/O error", losing the kernel's
# errno (DAMON's EBUSY, EINVAL at "on"), where bash's says "write error: <strerror>".
_SCRIPT_PRELUDE = r"""
o() { printf '%s %s\n' "$N" "$*"; }
fail() { o err "$(printf '%s' "$1" | base64 | tr -d '\n')"; exit 0; }
r() {
  [ -e "$1" ] || fail "$1: No such file or directory"
  n=0
  if { command exec 3<"$1"; } 2>/dev/null; then
    while IFS= read -r x <&3 || [ -n "$x" ]; do printf '%s + %s\n' "$N" "$x"; n=$((n + 1)); done
    exec 3<&-
  fi
  [ "$n" -gt 0 ] && { o val; return; }
  if v=$(cat -- "$1" 2>&1 >/dev/null) && [ -z "$v" ]; then o val; else fail "$v"; fi
}
w() {
  [ -e "$1" ] || fail "$1: No such file or directory"
  if v=$(printf '%s' "$2" 2>&1 >"$1"); then o ok; else fail "$v"; fi
}
e() { if [ -e "$1" ]; then o yes; else o no; fi; }
l() {
  [ -d "$1" ] || fail "$1: No such file or directory"
  for x in "$1"/* "$1"/.[!.]* "$1"/..?*; do
    if [ -e "$x" ] || [ -L "$x" ]; then printf '%s + %s\n' "$N" "${x##*/}"; fi
  done
  o ls
}
m() { if v=$(mkdir -- "$1" 2>&1); then o ok; else fail "$v"; fi; }
d() { if v=$(rmdir -- "$1" 2>&1); then o ok; else fail "$v"; fi; }
"""


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
            target = shlex.quote(self._rooted(op.path))
            if isinstance(op, Read):
                lines.append(f"r {target}")
            elif isinstance(op, Write):
                lines.append(f"w {target} {shlex.quote(op.value)}")
            elif isinstance(op, Exists):
                lines.append(f"e {target}")
            elif isinstance(op, ListDir):
                lines.append(f"l {target}")
            elif isinstance(op, MakeDir):
                lines.append(f"m {target}")
            elif isinstance(op, RemoveDir):
                lines.append(f"d {target}")
            else:
                raise TypeError(f"unknown operation {op!r}")
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
        pending: list[str] = []  # "+" lines: the value of the next answer
        prefix = nonce + " "
        # split("\n"), not splitlines(): a value may hold \r or other line breaks.
        for line in result.stdout.split("\n"):
            if not line.startswith(prefix) or len(values) == len(ops):
                continue
            kind, _, payload = line[len(prefix) :].partition(" ")
            if kind == "+":
                pending.append(payload)
                continue
            op = ops[len(values)]
            if kind == "err":
                detail = base64.b64decode(payload).decode(errors="replace")
                err = _errno_from_message(detail)
                raise FsError(_describe(op, err, detail), path=op.path, errno=err)
            values.append(_decode_answer(op, kind, pending))
            pending = []
        if len(values) != len(ops):
            tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
            raise FsError(
                f"{self.description}: batch of {len(ops)} operations stopped after "
                f"{len(values)} (exit status {result.exit_status}): {tail[0]}",
                path=ops[len(values)].path,
            )
        return values


def _decode_answer(op: Op, kind: str, lines: list[str]) -> Any:
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
        return sorted(lines)
    return "\n".join(lines).rstrip("\n")


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
