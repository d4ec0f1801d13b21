"""A user's PARSEC 3.0 on the host: a tree or a tarball, hashed, listed and made uploadable.

Both forms become one archive uploaded to the guest (a tree is packed once
into a plain tar under the cache, keyed by the hash of its content), and one
digest of the content, the same for a tree and for a tarball of it, that keys
everything built from it.  Hashing and listing are memoised
by the files' (path, size, mtime), so an unchanged tree is read once.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import json
import lzma
import os
import posixpath
import shlex
import shutil
import stat
import subprocess
import tarfile
import tempfile
import zlib
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
    """Every non-directory under ``root`` (symlinks to directories too, which os.walk lists
    with the directories and does not follow), by path relative to ``root``."""
    entries = []
    for directory, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files + [d for d in dirs if os.path.islink(Path(directory) / d)]):
            full = Path(directory) / name
            entries.append((full.relative_to(root).as_posix(), full.lstat()))
    return entries


def _memo(kind: str, signature: str) -> Path:
    return parsec_cache() / "memo" / f"{kind}-{signature[:32]}.json"


# A record is (kind, exec bits, size, sha256 of the bytes or the link target): what an
# unpacked tree holds at a path.  Directories, devices, fifos and sockets are not recorded.
Record = tuple[str, int, int, str]


def source_digest(path: Path) -> str:
    """sha256 (16 hex) of a PARSEC's content, the same for a tree and for a tarball of it:
    its files' and symlinks' paths relative to the PARSEC root, exec bits, sizes and bytes
    (or link targets).  A tarball's single top directory is stripped as the guest's unpack
    strips it, so a tree and its tarball key one upload and one build."""
    path = Path(path)
    tree = path.is_dir()
    entries = _tree_entries(path) if tree else [(str(path.resolve()), path.stat())]
    memo = _memo("digest2", _stat_signature(entries))
    if memo.is_file():
        return json.loads(memo.read_text())["digest"]
    records = _tree_records(path, entries) if tree else _tarball_records(path)
    digest = _records_digest(records)
    atomic_write_json(memo, {"path": str(path), "digest": digest})
    return digest


def _records_digest(records: dict[str, Record]) -> str:
    prefix = _root_prefix(records) or ""
    hasher = hashlib.sha256()
    for rel in sorted(records):
        kind, mode, size, sha = records[rel]
        name = rel[len(prefix) :].encode("utf-8", "surrogateescape")
        hasher.update(b"%s\0%s\0%o\0%d\0%s\n" % (kind.encode(), name, mode, size, sha.encode()))
    return hasher.hexdigest()[:16]


def _link_record(target: str) -> Record:
    raw = target.encode("utf-8", "surrogateescape")
    return ("link", 0, len(raw), hashlib.sha256(raw).hexdigest())


def _tree_records(root: Path, entries: list[tuple[str, os.stat_result]]) -> dict[str, Record]:
    records: dict[str, Record] = {}
    for rel, st in entries:
        full = root / rel
        if stat.S_ISLNK(st.st_mode):
            records[rel] = _link_record(os.readlink(full))
        elif stat.S_ISREG(st.st_mode):
            with open(full, "rb") as stream:
                size, sha = _hash_stream(stream)
            records[rel] = ("file", st.st_mode & 0o111, size, sha)
    return records


def _hash_stream(stream) -> tuple[int, str]:
    hasher, size = hashlib.sha256(), 0
    while block := stream.read(CHUNK):
        hasher.update(block)
        size += len(block)
    return size, hasher.hexdigest()


def _member_path(name: str) -> str:
    # GNU tar extracts "./a", "/a" and "a//b" as a/b.
    return posixpath.normpath("/" + name).lstrip("/")


# The compression is told by the first bytes, as GNU tar tells it (not by the suffix).
_MAGIC = ((b"\x1f\x8b", "gzip"), (b"\xfd7zXZ\x00", "xz"), (b"BZh", "bzip2"),
          (b"\x28\xb5\x2f\xfd", "zstd"))  # fmt: skip
_DECOMPRESSORS = {
    "gzip": lambda raw: gzip.GzipFile(fileobj=raw, mode="rb"),
    "xz": lzma.LZMAFile,
    "bzip2": bz2.BZ2File,
}


def _tarball_records(path: Path) -> dict[str, Record]:
    """The records of a tarball, read as one stream (``zstd -dc`` piped in for zstd).  The
    decompressors check the data to its end, so a truncated download is refused."""
    try:
        with open(path, "rb") as raw:
            head = raw.read(6)
            compression = next((name for magic, name in _MAGIC if head.startswith(magic)), None)
            if compression == "zstd":
                return _zstd_records(path)
            raw.seek(0)
            if compression is None:
                return _stream_records(path, raw)
            with _DECOMPRESSORS[compression](raw) as plain:
                return _stream_records(path, plain)
    except (tarfile.TarError, EOFError, OSError, lzma.LZMAError, zlib.error) as error:
        raise ConfigError(
            f"PARSEC path {path} is not a readable tarball ({', '.join(TARBALL_SUFFIXES)}): {error}"
        ) from error


def _zstd_records(path: Path) -> dict[str, Record]:
    if shutil.which("zstd") is None:
        raise ConfigError(f"cannot read the PARSEC tarball {path}: zstd is not installed")
    with tempfile.TemporaryFile() as errors:
        with subprocess.Popen(
            ["zstd", "-dc", "--", str(path)], stdout=subprocess.PIPE, stderr=errors
        ) as zstd:
            assert zstd.stdout is not None
            try:
                records = _stream_records(path, zstd.stdout)
            finally:
                zstd.stdout.close()
        if zstd.returncode != 0:
            errors.seek(0)
            reason = errors.read().decode(errors="replace").strip() or "zstd failed"
            raise ConfigError(f"cannot read the PARSEC tarball {path}: {reason}")
    return records


class _TailReader:
    """A stream that keeps what it delivered last, to see the end-of-archive block there."""

    KEEP = 4 * tarfile.RECORDSIZE  # more than tarfile reads past a header

    def __init__(self, stream) -> None:
        self.stream, self.delivered, self.tail = stream, 0, b""

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.delivered += len(data)
        self.tail = (self.tail + data)[-self.KEEP :]
        return data

    def zero_block_at(self, offset: int) -> bool:
        start = offset - (self.delivered - len(self.tail))
        block = self.tail[start : start + tarfile.BLOCKSIZE] if start >= 0 else b""
        return len(block) == tarfile.BLOCKSIZE and not block.strip(b"\0")


def _stream_records(path: Path, plain) -> dict[str, Record]:
    """Records of the uncompressed tar stream ``plain``, read to its end."""
    records: dict[str, Record] = {}
    plain = _TailReader(plain)
    with tarfile.open(fileobj=plain, mode="r|") as tar:
        for member in tar:
            rel = _member_path(member.name)
            if not rel or rel == ".":
                continue
            if member.isreg():
                stream = tar.extractfile(member)
                assert stream is not None
                size, sha = _hash_stream(stream)
                if size != member.size:
                    raise ConfigError(f"PARSEC tarball {path} ends inside {member.name}")
                records[rel] = ("file", member.mode & 0o111, size, sha)
            elif member.issym():
                records[rel] = _link_record(member.linkname)
            elif member.islnk():
                # A hard link's bytes are its target's, stored earlier in the stream.
                target = records.get(_member_path(member.linkname))
                if target is None:
                    raise ConfigError(
                        f"PARSEC tarball {path}: hard link {member.name} to "
                        f"{member.linkname}, which the archive does not hold before it"
                    )
                records[rel] = target
            else:
                records.pop(rel, None)  # a later directory or device replaces a file
        # tarfile ends quietly at a header cut short; GNU tar (the guest's unpack) does not.
        if not plain.zero_block_at(tar.offset):
            raise ConfigError(f"PARSEC tarball {path} ends before its end-of-archive block")
    while plain.read(CHUNK):  # the padding after the archive: the decompressor's end checks
        pass
    return records


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


def _root_prefix(members) -> str | None:
    """Where the PARSEC root is among member paths: ``""`` (bin/parsecmgmt at the top),
    ``"<top>/"`` (in one top directory, which the guest's unpack strips), or None."""
    if "bin/parsecmgmt" in members:
        return ""
    tops = {m.split("/", 1)[0] for m in members}
    if len(tops) == 1 and f"{next(iter(tops))}/bin/parsecmgmt" in members:
        return f"{next(iter(tops))}/"
    return None


def tree_relative_members(members: list[str]) -> list[str] | None:
    """Members relative to the PARSEC root: at the top or under one top directory; None if
    neither holds bin/parsecmgmt."""
    prefix = _root_prefix(set(members))
    if prefix is None:
        return None
    return [m[len(prefix) :] for m in members if m.startswith(prefix)] if prefix else members


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
