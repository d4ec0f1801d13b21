"""Choosing the machine a command looks at.

Every command that reads a kernel interface calls :func:`add_target_arguments`
on its parser and :func:`open_filesystem` in ``run``.  Today the choices are
the local machine (default; read-only commands may read the host),
``--root DIR``, a fake kernel tree, and ``--guest NAME``, a guest started with
``damon-eval guest boot`` (reached over SSH, one round trip per batch).  Other
remote targets join the same mutually exclusive group.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from damon_eval.errors import ConfigError
from damon_eval.fs import FileSystem, LocalFs


def add_target_arguments(parser: argparse.ArgumentParser) -> argparse._MutuallyExclusiveGroup:
    """Add the target options; returns their group so more targets can join it."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--root",
        metavar="DIR",
        help="look at a fake kernel tree below DIR instead of this machine "
        "(paths such as /sys/kernel/mm/damon are read as DIR/sys/kernel/mm/damon)",
    )
    group.add_argument(
        "--guest",
        metavar="NAME",
        help="look at the guest NAME started with `damon-eval guest boot --name NAME`",
    )
    return group


def open_filesystem(args: argparse.Namespace) -> FileSystem:
    """The :class:`~damon_eval.fs.FileSystem` of the machine ``args`` select."""
    root = getattr(args, "root", None)
    if root:
        path = Path(root)
        if not path.is_dir():
            raise ConfigError(f"--root {root!r} is not a directory")
        return LocalFs(root=path)
    guest = getattr(args, "guest", None)
    if guest:
        from damon_eval.guest.machine import Guest

        return Guest.attach(guest).fs  # GuestError names the running guests if unknown
    return LocalFs()


def target_label(args: argparse.Namespace) -> str:
    """How to name the selected machine in messages."""
    root = getattr(args, "root", None)
    if root:
        return f"tree {root}"
    guest = getattr(args, "guest", None)
    return f"guest {guest}" if guest else "this machine"
