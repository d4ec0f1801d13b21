"""Choosing a machine and opening it: the one place that does.

A :class:`MachineSelector` says which machine (this one, a fake tree, a guest
from ``damon-eval guest boot``, a fresh guest, or ``--ssh USER@HOST``);
:func:`open_machine` connects to it (or boots it) for the ``with`` block.

With a :class:`~damon_eval.machines.preparation.Preparation` the caller is
going to run the agent there, so:

* a fresh guest applies it before its booted state is saved (the saved state
  is reused while the preparation's digest is the same);
* a guest from ``guest boot`` gets it once per digest (a stamp file);
* a ``--ssh`` host must be logged into as root and have no kdamond the harness
  did not start (checked before anything is uploaded); then it is prepared
  under ``/var/tmp/damon-eval/<digest>``;
* this machine is only checked for foreign kdamonds: the caller builds the
  agent in place (:func:`damon_eval.agent.build.build_agent_locally`).

Without one (``damon-eval damon status``) nothing is checked or changed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from damon_eval.errors import ConfigError

if TYPE_CHECKING:
    from damon_eval.guest.machine import Guest
    from damon_eval.machines.preparation import Preparation
    from damon_eval.machines.protocol import Machine
    from damon_eval.machines.remote import RemoteOptions

MachineKind = Literal["local", "tree", "guest", "fresh-guest", "ssh"]


@dataclass(frozen=True, slots=True)
class GuestSettings:
    """How to start a fresh guest (a campaign's ``guest:`` section; defaults otherwise)."""

    image_spec: Path | None = None  # None: the default image
    vcpus: int = 2
    memory_mib: int = 2048
    accel: str = "auto"
    fast_start: bool = True
    pin_cpus: tuple[int, ...] | None = None
    icount: str | None = None  # benchmarks only: $DAMON_EVAL_BENCH_ICOUNT (measure.noise)
    kernel: Any = None  # a campaign's guest.kernel (replaces the spec's), paths from kernel_base
    kernel_base: Path | None = None


@dataclass(frozen=True, slots=True)
class MachineSelector:
    """Which machine; make one with the class methods.

    ``work_dir``: where a fresh guest keeps its console log and where the
    kdamonds started for the run are recorded (default: the cache's registry).
    """

    kind: MachineKind = "local"
    root: Path | None = None
    guest_name: str | None = None
    remote: RemoteOptions | None = None
    guest: GuestSettings = field(default_factory=GuestSettings)
    work_dir: Path | None = None

    @classmethod
    def local(cls) -> MachineSelector:
        return cls("local")

    @classmethod
    def tree(cls, root: Path | str) -> MachineSelector:
        path = Path(root)
        if not path.is_dir():
            raise ConfigError(f"--root {str(root)!r} is not a directory")
        return cls("tree", root=path)

    @classmethod
    def attached_guest(cls, name: str) -> MachineSelector:
        return cls("guest", guest_name=name)

    @classmethod
    def fresh_guest(
        cls, settings: GuestSettings | None = None, work_dir: Path | None = None
    ) -> MachineSelector:
        return cls("fresh-guest", guest=settings or GuestSettings(), work_dir=work_dir)

    @classmethod
    def ssh(cls, options: RemoteOptions, work_dir: Path | None = None) -> MachineSelector:
        return cls("ssh", remote=options, work_dir=work_dir)

    def with_work_dir(self, work_dir: Path) -> MachineSelector:
        return MachineSelector(
            self.kind, self.root, self.guest_name, self.remote, self.guest, work_dir
        )

    @property
    def persistent(self) -> bool:
        """Whether the machine outlives the run (see :mod:`damon_eval.machines.protocol`)."""
        return self.kind in ("local", "tree", "ssh")

    def describe(self) -> str:
        """How to name the machine in messages."""
        if self.kind == "ssh" and self.remote is not None:
            return f"remote {self.remote.spec}"
        if self.kind == "tree":
            return f"tree {self.root}"
        if self.kind == "guest":
            return f"guest {self.guest_name}"
        if self.kind == "fresh-guest":
            return "a fresh guest"
        return "this machine"


@contextlib.contextmanager
def open_machine(
    selector: MachineSelector, preparation: Preparation | None = None
) -> Iterator[Machine]:
    """The selected machine, prepared for ``preparation`` (see the module docstring),
    for the block; afterwards a fresh guest is stopped, the others disconnected."""
    if selector.kind == "ssh":
        with _remote(selector, preparation) as machine:
            yield machine
    elif selector.kind == "guest":
        with _attached_guest(selector, preparation) as machine:
            yield machine
    elif selector.kind == "fresh-guest":
        with _fresh_guest(selector, preparation) as machine:
            yield machine
    else:
        from damon_eval.machines.local import LocalMachine

        with LocalMachine(selector.root) as local:
            if preparation is not None:
                _refuse_if_busy(local, selector)  # nothing is built or started on a busy one
            yield local


def _refuse_if_busy(machine: Machine, selector: MachineSelector) -> None:
    from damon_eval.damon.controller import (
        OWNERSHIP_FILE,
        DamonController,
        OwnershipRegistry,
        refuse_if_damon_busy,
    )
    from damon_eval.machines.protocol import kernel_path

    registry = None
    if selector.work_dir is not None:
        registry = OwnershipRegistry(selector.work_dir / OWNERSHIP_FILE)
    controller = DamonController(machine.fs, registry=registry)
    refuse_if_damon_busy(machine, controller, proc_dir=kernel_path(machine, "/proc"))


@contextlib.contextmanager
def _remote(selector: MachineSelector, preparation: Preparation | None) -> Iterator[Machine]:
    from damon_eval.machines.remote import RemoteMachine
    from damon_eval.machines.signals import terminate_as_interrupt

    assert selector.remote is not None, "MachineSelector.ssh sets the options"
    with terminate_as_interrupt(), RemoteMachine.connect(selector.remote) as machine:
        if preparation is not None:
            machine.require_root()
            # Before anything changes there: a kdamond we did not start means hands off.
            _refuse_if_busy(machine, selector)
            machine.prepare(preparation)
        yield machine


@contextlib.contextmanager
def _attached_guest(
    selector: MachineSelector, preparation: Preparation | None
) -> Iterator[Machine]:
    from damon_eval.guest.machine import Guest

    guest = Guest.attach(selector.guest_name or "")  # names the running guests if unknown
    try:
        if preparation is not None:
            prepare_attached_guest(guest, preparation)
        yield guest
    finally:
        guest.disconnect()  # the guest stays up: it is `guest boot`'s


def prepare_attached_guest(guest: Guest, preparation: Preparation) -> None:
    """A guest from ``guest boot`` has no agent: apply the preparation once per digest."""
    from damon_eval.paths import GUEST_PREFIX

    stamp = f"{GUEST_PREFIX}/.prepared-{preparation.digest()}"
    if guest.run(f"test -e {stamp}", timeout_s=30).exit_status == 0:
        return
    preparation.apply(guest)
    guest.run(f"touch {stamp}", timeout_s=30)


@contextlib.contextmanager
def _fresh_guest(selector: MachineSelector, preparation: Preparation | None) -> Iterator[Machine]:
    from damon_eval.guest import ensure_image
    from damon_eval.guest.machine import Guest

    settings = selector.guest
    spec = str(settings.image_spec) if settings.image_spec is not None else None
    image = ensure_image(
        spec, progress=False, kernel=settings.kernel, kernel_base=settings.kernel_base
    )
    guest = Guest.start(
        image,
        vcpus=settings.vcpus,
        memory_mib=settings.memory_mib,
        accel=settings.accel,
        fast_start=settings.fast_start,
        preparation=preparation,
        run_dir=selector.work_dir,
        pin_cpus=list(settings.pin_cpus) if settings.pin_cpus is not None else None,
        icount=settings.icount,
    )
    with guest:
        yield guest
