"""Choosing the machine a command looks at.

Every command that reads a kernel interface calls :func:`add_target_arguments`
on its parser and, in ``run``, opens :func:`machine_selector`'s machine with
:func:`damon_eval.machine_select.open_machine`.  The choices are the
local machine (default; read-only commands may read the host), ``--root DIR``
(a fake kernel tree), ``--guest NAME`` (a guest started with ``damon-eval guest
boot``, reached over SSH, one round trip per batch) and ``--ssh
USER@HOST[:PORT]`` (a remote machine, with ``--known-hosts``/``--identity``/
``--no-agent``; :func:`add_ssh_arguments`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from damon_eval.errors import ConfigError

if TYPE_CHECKING:
    from damon_eval.machine_select import MachineSelector
    from damon_eval.machines.remote import RemoteOptions

FRESH_GUEST = ""  # `--guest` without a name (`record`): a fresh guest of the default image


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
    add_ssh_arguments(parser, group)
    return group


# ------------------------------------------------------------------ --ssh


def add_ssh_arguments(
    parser: argparse.ArgumentParser, group: argparse._MutuallyExclusiveGroup | None = None
) -> None:
    """``--ssh`` (into ``group`` when given) and the options that go with it."""
    (group or parser).add_argument(
        "--ssh",
        metavar="USER@HOST[:PORT]",
        help="a remote machine that has DAMON, reached over SSH (see docs/remote.md)",
    )
    ssh = parser.add_argument_group("SSH options (with --ssh)")
    ssh.add_argument(
        "--known-hosts",
        type=Path,
        metavar="FILE",
        help="trust the host keys in FILE (default ~/.ssh/known_hosts); unknown keys are refused",
    )
    ssh.add_argument(
        "--identity",
        type=Path,
        metavar="FILE",
        help="private key to log in with, besides the ssh-agent's keys (never passwords)",
    )
    ssh.add_argument("--no-agent", action="store_true", help="do not use the ssh-agent's keys")
    ssh.add_argument(
        "--connect-timeout",
        type=float,
        default=30.0,
        metavar="S",
        help="give up connecting after S seconds (default 30)",
    )


def remote_options(
    args: argparse.Namespace, *, poll_interval_s: float | None = None
) -> RemoteOptions | None:
    """The :class:`~damon_eval.machines.remote.RemoteOptions` of ``--ssh``, or None."""
    from damon_eval.machines.remote import RemoteOptions, RemoteSpec

    spec_text = getattr(args, "ssh", None)
    if not spec_text:
        given = [
            name
            for name, attr in (("--known-hosts", "known_hosts"), ("--identity", "identity"))
            if getattr(args, attr, None) is not None
        ]
        if given:
            raise ConfigError(f"{' and '.join(given)} only apply with --ssh USER@HOST")
        return None
    if not args.connect_timeout > 0:
        raise ConfigError(f"--connect-timeout {args.connect_timeout} must be > 0")
    if args.no_agent and args.identity is None:
        raise ConfigError("--no-agent leaves no key to log in with: give --identity FILE too")
    extra = {"poll_interval_s": poll_interval_s} if poll_interval_s is not None else {}
    return RemoteOptions(
        spec=RemoteSpec.parse(spec_text),
        known_hosts=args.known_hosts,
        identity=args.identity,
        use_agent=not args.no_agent,
        connect_timeout_s=args.connect_timeout,
        **extra,
    )


def machine_selector(
    args: argparse.Namespace, *, poll_interval_s: float | None = None
) -> MachineSelector:
    """The :class:`~damon_eval.machine_select.MachineSelector` of the target options;
    ``--guest`` without a name (``record``'s) is a fresh guest."""
    from damon_eval.machine_select import MachineSelector

    options = remote_options(args, poll_interval_s=poll_interval_s)
    if options is not None:
        return MachineSelector.ssh(options)
    root = getattr(args, "root", None)
    if root:
        return MachineSelector.tree(root)
    guest = getattr(args, "guest", None)
    if guest == FRESH_GUEST:
        return MachineSelector.fresh_guest()
    if guest is not None:
        return MachineSelector.attached_guest(guest)
    return MachineSelector.local()
