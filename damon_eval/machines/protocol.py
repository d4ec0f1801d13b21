"""The :class:`Machine` protocol: what the run and record code need of a machine.

Three kinds implement it: :class:`damon_eval.guest.machine.Guest` (a QEMU
guest the harness boots and throws away), :class:`damon_eval.machines.remote.RemoteMachine`
(``--ssh``) and :class:`damon_eval.machines.local.LocalMachine` (this machine).
The last two are *persistent*: they outlive the run, so the harness

* installs its agent and workloads under ``/var/tmp/damon-eval/<digest>``
  instead of the guest image's ``/opt/damon-eval``
  (:func:`damon_eval.machines.preparation.prepare_machine`),
* restores every system setting it changes (:mod:`damon_eval.measure.system`),
* stops the agent and its workload when it is interrupted.

:func:`localize`, :func:`is_persistent` and :func:`kernel_path` read the
optional attributes (``localize``, ``persistent``, ``kernel_path``) with the
defaults a guest needs, so guests need none of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from damon_eval.fs import CommandResult, FileSystem
    from damon_eval.machines.control import ControlChannel


@runtime_checkable
class Machine(Protocol):
    """A machine the harness runs scripts on, copies files to and from, and reads."""

    name: str  # how errors name it

    def run(self, cmd: str, timeout_s: float) -> CommandResult:
        """One shell command under ``timeout -k``."""
        ...

    def run_script(self, script: str, timeout_s: float = 60.0) -> CommandResult:
        """A script on the stdin of one ``sh -s``."""
        ...

    @property
    def fs(self) -> FileSystem:
        """Its kernel files (over SSH: one round trip per batch)."""
        ...

    def put(self, local_path: Path | str, remote_path: str) -> None: ...

    def get(self, remote_path: str, local_path: Path | str) -> None: ...

    def facts(self) -> dict[str, Any]:
        """What a result records about the machine."""
        ...

    def is_alive(self) -> bool: ...

    def disconnect(self) -> None:
        """Close the SSH connection, if any (the next command reconnects)."""
        ...

    @property
    def control(self) -> ControlChannel | None:
        """A line channel to the agent (a guest's virtio-serial port), or None."""
        ...


def localize(machine: Machine, text: str) -> str:
    """``text`` with guest paths (``/opt/damon-eval``) mapped to the machine's."""
    mapper = getattr(machine, "localize", None)
    return mapper(text) if mapper is not None else text


def is_persistent(machine: Machine) -> bool:
    """Whether the machine outlives the run (remote, local): clean up on it."""
    return bool(getattr(machine, "persistent", False))


def kernel_path(machine: Machine, path: str) -> str:
    """A kernel interface path as processes on the machine see it (a fake tree maps it)."""
    mapper = getattr(machine, "kernel_path", None)
    return mapper(path) if mapper is not None else path
