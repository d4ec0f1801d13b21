"""Noise at its source: which steps a run takes against run-to-run noise, and pinning.

A campaign's ``noise:`` section (``drop_caches``, ``compact_memory``, ``pin_cpus``)
says which steps run; every run records in ``provenance.noise`` what was actually
done, or why not (docs/benchmarks.md, "Noise at its source", measures each step):

* ``drop_caches``: the agent syncs and drops caches right before sample 0
  (``de-agent --drop-caches``); with ``compact_memory`` the page cache is also
  dropped, then memory compacted, before the agent starts
  (:func:`damon_eval.measure.system.settle_memory`).  Both default to ``auto``:
  on for ``--ssh`` and local machines, whose memory carries earlier runs' history;
  off in guests, which start every run from a fresh boot or the same saved state,
  and where both steps were measured to add spread (after restores and cold boots).
* ``pin_cpus: auto``: with at least vcpus+1 host CPUs for this process, each vCPU
  thread gets its own host CPU and the harness (this process) and QEMU's other
  threads (main loop, I/O) the rest (:func:`pin_plan`, :func:`pinned`); fewer CPUs
  mean no pinning, a recorded reason and one warning line.
* ``-icount`` is not a campaign option: docs/benchmarks.md found the overheads it
  gives not DAMON's.  ``benchmarks/noise_steps.py`` measures it through the normal
  run path with the environment variable :data:`BENCH_ICOUNT_ENV`
  (:func:`benchmark_icount`).
* clocks: runtimes come from the agent's CLOCK_MONOTONIC in the guest; after a
  restore the guest's wall clock is set from the host
  (:meth:`damon_eval.guest.running.RunningGuest.sync_clock`).  :func:`clock_facts`
  records that and the guest's clocksource.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from damon_eval.errors import ConfigError, DamonEvalError
from damon_eval.fs import FileSystem, LocalFs

log = logging.getLogger(__name__)

RUNTIME_CLOCK = "CLOCK_MONOTONIC in the guest (de-agent), from release to the target's exit"


BENCH_ICOUNT_ENV = "DAMON_EVAL_BENCH_ICOUNT"
ICOUNT_PATTERN = re.compile(r"^(shift=(auto|[0-9]|10))?(,?(align|sleep)=(on|off))*$")


def benchmark_icount() -> str | None:
    """QEMU's ``-icount`` value for a benchmark of it (``$DAMON_EVAL_BENCH_ICOUNT``), or
    None.  Warns when set: the runtimes it gives are not comparable with others."""
    value = os.environ.get(BENCH_ICOUNT_ENV, "").strip()
    if not value:
        return None
    if not ICOUNT_PATTERN.match(value):
        raise ConfigError(
            f"{BENCH_ICOUNT_ENV}={value!r} is not a QEMU -icount value; valid: "
            "shift=auto|0..10 with optional ,align=on|off and ,sleep=on|off"
        )
    log.warning(
        "%s=%s: QEMU -icount for benchmarks/noise_steps.py only; its runtimes and "
        "overheads are not comparable with runs without it (docs/benchmarks.md)",
        BENCH_ICOUNT_ENV,
        value,
    )
    return value


RESTORED_REASON = (
    "auto: skipped after a restore, which starts every run from the same settled memory "
    "(docs/benchmarks.md: the step raised runtime and RSS spread there)"
)
COLD_BOOT_REASON = (
    "auto: skipped after a cold boot, whose memory holds no earlier run "
    "(docs/benchmarks.md: the step raised runtime spread there and freed no huge pages)"
)
AUTO_SKIP_REASONS = {"restore": RESTORED_REASON, "cold": COLD_BOOT_REASON}


def _mode(value: Any) -> str:
    # YAML 1.1 reads a bare `off`/`on` as a boolean
    if value in (True, "on"):
        return "on"
    if value in (False, "off"):
        return "off"
    return "auto"


@dataclass(frozen=True, slots=True)
class NoiseSettings:
    """A campaign's ``noise:`` section, defaults filled in by the schema: each of
    ``drop_caches`` and ``compact_memory`` is on, off or auto (on unless the machine
    is a guest)."""

    drop_caches: str = "auto"
    compact_memory: str = "auto"
    pin_cpus: str = "auto"  # auto | off

    @classmethod
    def from_campaign(cls, settings: dict[str, Any]) -> NoiseSettings:
        noise = settings.get("noise") or {}
        pin = _mode(noise.get("pin_cpus", "auto"))
        return cls(
            drop_caches=_mode(noise.get("drop_caches", "auto")),
            compact_memory=_mode(noise.get("compact_memory", "auto")),
            pin_cpus="off" if pin == "off" else "auto",
        )

    def step(self, name: str, boot_kind: str | None) -> tuple[bool, str]:
        """Whether step ``name`` runs on a machine that came up as ``boot_kind``
        (restore | cold | None: not a guest), and why not."""
        mode = getattr(self, name)
        if mode == "off":
            return False, f"noise.{name} is off"
        if mode == "auto" and boot_kind is not None:
            if boot_kind not in AUTO_SKIP_REASONS:
                raise DamonEvalError(f"unknown boot kind {boot_kind!r}; valid: restore, cold")
            return False, AUTO_SKIP_REASONS[boot_kind]
        return True, ""


@dataclass(frozen=True, slots=True)
class PinPlan:
    """Where each vCPU thread and the harness go, or why nothing is pinned."""

    mode: str  # auto | off | explicit
    vcpu_cpus: tuple[int, ...] = ()  # host CPU of vCPU i; empty: not pinned here
    harness_cpus: tuple[int, ...] = ()
    reason: str = ""  # why not pinned (empty when pinned)

    @property
    def pins(self) -> bool:
        return bool(self.vcpu_cpus)

    def to_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {"mode": self.mode, "applied": self.pins}
        if self.pins:
            record["vcpu_cpus"] = list(self.vcpu_cpus)
            record["harness_cpus"] = list(self.harness_cpus)
        if self.reason:
            record["reason"] = self.reason
        return record


def pin_plan(
    mode: str,
    vcpus: int,
    allowed: set[int] | frozenset[int],
    *,
    explicit: tuple[int, ...] | None = None,
    not_here: str = "",
) -> PinPlan:
    """The pinning of a run with ``vcpus`` vCPUs on a host where this process may use
    ``allowed`` CPUs.  vCPUs get the highest CPUs, the harness the lowest (CPU 0 takes
    most of the host's interrupts) and any left over.  ``not_here``: why this run's
    machine is not a guest the run started (nothing to pin)."""
    if not_here:
        return PinPlan(mode, reason=not_here)
    if explicit:
        return PinPlan(
            "explicit",
            reason=f"guest.pin_vcpus {list(explicit)} pins the vCPUs (cyclically), "
            "the harness stays unpinned",
        )
    if mode == "off":
        return PinPlan("off", reason="noise.pin_cpus is off")
    cpus = sorted(allowed)
    if len(cpus) < vcpus + 1:
        return PinPlan(
            mode,
            reason=f"host has {len(cpus)} CPU{'s' if len(cpus) != 1 else ''} for this process "
            f"({_cpulist(cpus)}), needs vcpus+1 = {vcpus + 1}",
        )
    vcpu_cpus = tuple(cpus[len(cpus) - vcpus :])
    return PinPlan(mode, vcpu_cpus=vcpu_cpus, harness_cpus=tuple(cpus[: len(cpus) - vcpus]))


def _cpulist(cpus: list[int]) -> str:
    return ",".join(str(c) for c in cpus) or "none"


def _tasks(fs: FileSystem, pid: int) -> list[int]:
    """Thread ids of process ``pid`` (host procfs)."""
    return [int(name) for name in fs.listdir(f"/proc/{pid}/task") if name.isdigit()]


@runtime_checkable
class QemuGuest(Protocol):
    """What pinning needs of a guest: QEMU's host pid and its vCPU threads."""

    pid: int

    def vcpu_threads(self) -> dict[int, int]:
        """vCPU index -> host thread id (from QMP)."""
        ...


@contextlib.contextmanager
def pinned(
    plan: PinPlan,
    guest: QemuGuest | None,
    *,
    fs: FileSystem | None = None,
    setaffinity: Callable[[int, set[int]], None] = os.sched_setaffinity,
    getaffinity: Callable[[int], set[int]] = os.sched_getaffinity,
    own_pid: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Apply ``plan`` to ``guest`` (vCPU threads from QMP, its other threads from
    ``/proc/<pid>/task``) and to this process for the block; the record says what
    was done.  The harness's own affinity is put back afterwards; QEMU's ends with
    QEMU.  A failure to pin is a warning and a recorded reason, not a failed run."""
    record = plan.to_dict()
    if not plan.pins:
        yield record
        return
    fs = fs or LocalFs()
    own_pid = os.getpid() if own_pid is None else own_pid
    harness = set(plan.harness_cpus)
    before: dict[int, set[int]] = {}
    try:
        if guest is None:
            raise OSError("the machine is not a QEMU guest of this host")
        threads = guest.vcpu_threads()
        if len(threads) > len(plan.vcpu_cpus):
            raise OSError(f"the guest has {len(threads)} vCPU threads, planned for fewer")
        for index, thread in sorted(threads.items()):
            setaffinity(thread, {plan.vcpu_cpus[index]})
        others = [t for t in _tasks(fs, guest.pid) if t not in threads.values()]
        for thread in others:
            setaffinity(thread, harness)
        for thread in _tasks(fs, own_pid):
            before[thread] = set(getaffinity(thread))
            setaffinity(thread, harness)
        record["vcpu_threads"] = {str(i): t for i, t in sorted(threads.items())}
        record["qemu_other_threads"] = len(others)
    except (OSError, DamonEvalError) as exc:
        record.update(applied=False, reason=f"pinning failed: {exc}")
        log.warning("%s: running unpinned", record["reason"])
    try:
        yield record
    finally:
        for thread, cpus in before.items():
            with contextlib.suppress(OSError):  # a thread that ended has nothing to restore
                setaffinity(thread, cpus)


def warn_unpinned(plan: PinPlan) -> None:
    """One visible line when automatic pinning cannot pin (not when it was turned off)."""
    if plan.mode == "auto" and not plan.pins and "needs vcpus+1" in plan.reason:
        log.warning("vCPUs not pinned: %s", plan.reason)


def clock_facts(boot_kind: str | None, clocksource: str | None) -> dict[str, Any]:
    """How the run's clocks were kept honest (see the module docstring)."""
    if boot_kind == "restore":
        wall = "set from the host's clock right after the restore"
    elif boot_kind == "cold":
        wall = "the guest's own, from a cold boot"
    else:
        wall = "the machine's own"
    return {"runtime_clock": RUNTIME_CLOCK, "wall_clock": wall, "clocksource": clocksource}


__all__ = [
    "NoiseSettings",
    "PinPlan",
    "clock_facts",
    "pin_plan",
    "pinned",
    "warn_unpinned",
]
