"""What a machine needs before it is used: files to upload, commands to run.

A :class:`Preparation` is built by :func:`damon_eval.agent.preparation.agent_preparation`
(the agent, the access generator, workloads).  A guest applies it in its image
prefix ``/opt/damon-eval`` before its booted state is saved (the digest keys
that state).  A persistent machine (``--ssh``, this one) gets it under
``/var/tmp/damon-eval/<digest>`` with :func:`prepare_machine`, reused while
the digest is the same; paths in its text files and commands are mapped there.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shlex
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from damon_eval.errors import GuestError
from damon_eval.paths import GUEST_PREFIX

if TYPE_CHECKING:
    from damon_eval.machines.protocol import Machine

log = logging.getLogger(__name__)

PERSISTENT_BASE = "/var/tmp/damon-eval"  # where persistent machines keep them, per digest
PREPARED_STAMP = ".prepared"
TEXT_SUFFIXES = (".sh", ".cfg", ".sql", ".py", ".c")
# the prefix as a whole path component (not /opt/damon-evalx)
_GUEST_PREFIX_RE = re.compile(re.escape(GUEST_PREFIX) + r"(?![\w.-])")


class PreparationError(GuestError):
    """Uploading or building the agent/workloads on a machine failed."""


@dataclass(frozen=True, slots=True)
class Preparation:
    """Files to upload and commands to run before a guest is used (or its state saved).

    ``uploads`` are (local file, guest path) pairs; parent directories are
    created.  A command that exits non-zero fails the start.  The
    :meth:`digest` (file contents, paths, commands) is part of the saved-state
    key, so changing a source file makes a new saved state.
    """

    uploads: tuple[tuple[Path, str], ...] = ()
    commands: tuple[str, ...] = ()
    timeout_s: float = 900.0

    def digest(self) -> str:
        hasher = hashlib.sha256()
        for local, remote in self.uploads:
            try:  # in blocks: a PARSEC archive can be gigabytes
                with open(local, "rb") as stream:
                    hasher.update(
                        f"upload\0{remote}\0{os.fstat(stream.fileno()).st_size}\0".encode()
                    )
                    while block := stream.read(1 << 20):
                        hasher.update(block)
            except OSError as exc:
                raise GuestError(f"cannot read preparation file {local}: {exc}") from exc
        for command in self.commands:
            hasher.update(f"command\0{command}\0".encode())
        return hasher.hexdigest()[:16]

    def apply(self, guest: Machine) -> None:
        """Upload and run it in a guest's own prefix (nothing is mapped)."""
        for local, remote in self.uploads:
            parent = os.path.dirname(remote) or "/"
            guest.run(f"mkdir -p '{parent}'", timeout_s=30)
            guest.put(local, remote)
        for command in self.commands:
            result = guest.run(command, timeout_s=self.timeout_s)
            if result.exit_status != 0:
                output = (result.stderr or result.stdout).strip().splitlines()[-5:]
                raise GuestError(
                    f"preparation command {command!r} failed in guest {guest.name} with exit "
                    f"status {result.exit_status}: {' | '.join(output) or 'no output'}"
                )


def map_prefix(text: str, prefix: str | None) -> str:
    """Replace the guest prefix ``/opt/damon-eval`` by ``prefix`` (None: unchanged)."""
    if not prefix:
        return text
    return _GUEST_PREFIX_RE.sub(lambda _: prefix, text)


def prepared_prefix(digest: str, base: str = PERSISTENT_BASE) -> str:
    return f"{base}/{digest}"


def prepare_machine(
    machine: Machine, preparation: Preparation, *, base: str = PERSISTENT_BASE
) -> str:
    """Upload and build a :class:`Preparation` on a persistent
    machine under ``<base>/<digest>``; returns that prefix.

    A prefix with its stamp file is reused as it is: the digest covers every
    uploaded file's content, its path and every command.  Text files (scripts,
    configs, C sources) and commands get ``/opt/damon-eval`` mapped to the
    prefix.  A failed command leaves no stamp, so the next attempt redoes all.
    """
    digest = preparation.digest()
    prefix = prepared_prefix(digest, base)
    stamp = f"{prefix}/{PREPARED_STAMP}"
    if machine.run(f"test -e {shlex.quote(stamp)}", timeout_s=30).exit_status == 0:
        log.info("%s: using the preparation in %s", machine.name, prefix)
        return prefix
    log.info("%s: preparing the agent and workloads in %s", machine.name, prefix)
    with tempfile.TemporaryDirectory(prefix="damon-eval-prep-") as scratch:
        for index, (local, dest) in enumerate(preparation.uploads):
            local = Path(local)
            source = local
            if local.suffix in TEXT_SUFFIXES:
                text = local.read_text()
                mapped = map_prefix(text, prefix)
                if mapped != text:
                    source = Path(scratch) / f"{index}-{local.name}"
                    source.write_text(mapped)
                    source.chmod(local.stat().st_mode & 0o7777)
            target = map_prefix(dest, prefix)
            machine.run(f"mkdir -p {shlex.quote(os.path.dirname(target) or '/')}", timeout_s=30)
            machine.put(source, target)
    for command in preparation.commands:
        result = machine.run(map_prefix(command, prefix), timeout_s=preparation.timeout_s)
        if result.exit_status != 0:
            output = (result.stderr or result.stdout).strip().splitlines()[-5:]
            raise PreparationError(
                f"preparing {machine.name}: command {command.splitlines()[0][:80]!r} failed "
                f"with exit status {result.exit_status}: {' | '.join(output) or 'no output'}"
                + (
                    "; the agent and synthetic workloads are built there with gcc (or musl-gcc): "
                    "install gcc on that machine"
                    if "gcc" in " ".join(output) and "not found" in " ".join(output)
                    else ""
                )
            )
    machine.run(f"touch {shlex.quote(stamp)}", timeout_s=30)
    return prefix
