"""A user's PARSEC 3.0 on the host: a tree or a tarball, hashed, listed and made uploadable.

Both forms become one archive uploaded to the guest (a tree is packed once
into a plain tar under the cache, keyed by the hash of its content), and one
digest that keys everything built from it.  Hashing and listing are memoised
by the files' (path, size, mtime), so an unchanged tree is read once.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
from pathlib import Path

from damon_eval.atomic import atomic_write_json
from damon_eval.errors import ConfigError
from damon_eval.paths import cache_dir

TARBALL_SUFFIXES: tuple[str, ...] = (".tar", ".tar.gz", ".tgz", ".tar.xz", ".tar.zst")
CHUNK = 1 << 20


def parsec_cache() -> Path:
    return cache_dir() / "parsec"


def tarball_suffix(path: Path) -> str | None:
    name = path.name.lower()
    return next((s for s in TARBALL_SUFFIXES if name.endswith(s)), None)


def _stat_signature(paths: list[tuple[str, os.stat_result]]) -> str:
    hasher = hashlib.sha256()
    for rel, st in paths:
        hasher.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_mode:o}\n".encode())
    return hasher.hexdigest()


def _tree_entries(root: Path) -> list[tuple[str, os.stat_result]]:
    entries = []
    for directory, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            full = Path(directory) / name
            entries.append((full.relative_to(root).as_posix(), full.lstat()))
    return entries


def _memo(kind: str, signature: str) -> Path:
    return parsec_cache() / "memo" / f"{kind}-{signature[:32]}.json"


def source_digest(path: Path) -> str:
    """sha256 (16 hex) of a tree's content (paths, exec bits, bytes) or of a tarball's bytes."""
    path = Path(path)
    entries = _tree_entries(path) if path.is_dir() else [(path.name, path.stat())]
    memo = _memo("digest", _stat_signature(entries))
    if memo.is_file():
        return json.loads(memo.read_text())["digest"]
    hasher = hashlib.sha256()
    if path.is_dir():
        for rel, st in entries:
            full = path / rel
            if os.path.islink(full):
                hasher.update(f"link\0{rel}\0{os.readlink(full)}\n".encode())
                continue
            hasher.update(f"file\0{rel}\0{st.st_mode & 0o111:o}\0{st.st_size}\n".encode())
            _hash_file(hasher, full)
    else:
        _hash_file(hasher, path)
    digest = hasher.hexdigest()[:16]
    atomic_write_json(memo, {"path": str(path), "digest": digest})
    return digest


def _hash_file(hasher, path: Path) -> None:
    with open(path, "rb") as stream:
        while block := stream.read(CHUNK):
            hasher.update(block)


def upload_archive(path: Path) -> Path:
    """The file to upload: a tarball as it is; a tree packed once into ``<cache>/parsec/trees``."""
    path = Path(path)
    if not path.is_dir():
        return path
    target = parsec_cache() / "trees" / f"{source_digest(path)}.tar"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + f".partial-{os.getpid()}")
    result = subprocess.run(
        ["tar", "--sort=name", "--owner=0", "--group=0", "--numeric-owner",
         "-cf", str(partial), "-C", str(path), "."],
        capture_output=True, text=True,
    )  # fmt: skip
    if result.returncode != 0:
        partial.unlink(missing_ok=True)
        raise ConfigError(f"cannot pack the PARSEC tree {path}: {result.stderr.strip()}")
    partial.replace(target)
    return target


def tarball_members(path: Path) -> list[str]:
    """Member paths of a tarball (any compression GNU tar reads), memoised."""
    path = Path(path)
    memo = _memo("members", _stat_signature([(str(path.resolve()), path.stat())]))
    if memo.is_file():
        return json.loads(memo.read_text())["members"]
    result = subprocess.run(["tar", "-tf", str(path)], capture_output=True, text=True)
    if result.returncode != 0:
        raise ConfigError(
            f"PARSEC path {path} is not a readable tarball ({', '.join(TARBALL_SUFFIXES)}): "
            f"{result.stderr.strip().splitlines()[-1] if result.stderr.strip() else 'tar failed'}"
        )
    members = [m.removeprefix("./").rstrip("/") for m in result.stdout.splitlines()]
    members = [m for m in members if m and m != "."]
    atomic_write_json(memo, {"path": str(path), "members": members})
    return members


def tree_relative_members(members: list[str]) -> list[str] | None:
    """Members relative to the PARSEC root: at the top or under one top directory; None if
    neither holds bin/parsecmgmt."""
    if "bin/parsecmgmt" in members:
        return members
    tops = {m.split("/", 1)[0] for m in members}
    if len(tops) == 1:
        top = tops.pop()
        inner = [m.split("/", 1)[1] for m in members if "/" in m]
        if "bin/parsecmgmt" in inner:
            return inner
        del top
    return None


def unpack_command(archive: str, root: str, digest: str) -> str:
    """Guest sh: unpack ``archive`` (GNU tar detects the compression) into ``root`` unless
    ``root`` already holds this digest; the tree may sit at the top or in one top directory."""
    a, r = shlex.quote(archive), shlex.quote(root)
    tmp = shlex.quote(root + ".unpack")
    marker = shlex.quote(f"{root}/.damon-eval-source")
    return (
        f'if [ "$(cat {marker} 2>/dev/null)" != {digest} ]; then '
        f"rm -rf {r} {tmp} && mkdir -p {tmp} && tar -xf {a} -C {tmp} && "
        f"if [ -f {tmp}/bin/parsecmgmt ]; then mv {tmp} {r}; "
        f'else set -- {tmp}/*; if [ "$#" -eq 1 ] && [ -f "$1/bin/parsecmgmt" ]; then '
        f'mv "$1" {r} && rmdir {tmp}; else '
        f"echo 'PARSEC archive has no bin/parsecmgmt at its top or in one top directory' >&2; "
        f"exit 1; fi; fi && echo {digest} > {marker} && rm -f {a}; fi"
    )
