"""System settings a run changes, in one place: THP, swap on zram, DAMON modules,
dropped caches, and putting them back on machines that outlive the run.

* :func:`apply_system_settings` sets what a run configuration asks for, on a
  guest and on a ``--ssh``/local machine alike.
* :func:`preserved_settings` records THP, swap devices, zram and the DAMON
  module parameters before a run on a persistent machine and writes the old
  values back afterwards, also after failures and on SIGINT/SIGTERM/SIGHUP
  (:func:`restore_settings`; :class:`SystemSettings` is the snapshot).
* :func:`settle_memory` drops caches and compacts memory before a run (noise).
"""

from __future__ import annotations

import contextlib
import logging
import re
import shlex
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from damon_eval.errors import DamonEvalError, FsError
from damon_eval.fs import Exists, Read, ReadIfExists, Write, WriteIfExists
from damon_eval.machines.page_cache import DROP_CACHES

if TYPE_CHECKING:
    from damon_eval.config.configuration import RunConfiguration
    from damon_eval.machines.protocol import Machine

log = logging.getLogger(__name__)


class SystemSettingError(DamonEvalError):
    """A setting did not stick, or could not be read or put back."""


# ------------------------------------------------------------ a run's settings

THP_ENABLED = "/sys/kernel/mm/transparent_hugepage/enabled"
CLOCKSOURCE = "/sys/devices/system/clocksource/clocksource0/current_clocksource"


def apply_system_settings(machine: Machine, configuration: RunConfiguration) -> dict[str, Any]:
    """THP policy, zram swap, DAMON modules of ``configuration``; returns what was set
    (provenance).  On a persistent machine run it inside :func:`preserved_settings`."""
    fs = machine.fs
    applied: dict[str, Any] = {}
    # The clocksource rides along: a guest that fell back from tsc reads time slower.
    _, current, clocksource = fs.execute(
        [Write(THP_ENABLED, configuration.thp), Read(THP_ENABLED), ReadIfExists(CLOCKSOURCE)]
    )
    if f"[{configuration.thp}]" not in current:
        raise SystemSettingError(f"THP policy {configuration.thp!r} did not stick: {current!r}")
    applied["thp_enabled"] = current
    applied["clocksource"] = clocksource
    swap = configuration.swap
    if swap:
        algorithm = swap.get("comp_algorithm")
        script = ["set -e", "swapoff -a 2>/dev/null || true", "modprobe zram num_devices=1"]
        # udev probes the new device; a reset racing with that failed with EIO
        # (seen after a restore).  Only a device that was set up needs a reset.
        script.append("udevadm settle --timeout=30 2>/dev/null || true")
        script.append(
            'if [ "$(cat /sys/block/zram0/initstate)" != 0 ]; then '
            "echo 1 > /sys/block/zram0/reset; fi"
        )
        if algorithm:
            script.append(f"echo {shlex.quote(algorithm)} > /sys/block/zram0/comp_algorithm")
        script += [
            f"echo {shlex.quote(swap['size'])} > /sys/block/zram0/disksize",
            "mkswap /dev/zram0 >/dev/null",
            "swapon /dev/zram0",
            "cat /proc/swaps",
        ]
        result = machine.run_script("\n".join(script) + "\n", timeout_s=120)
        if result.exit_status != 0:
            raise SystemSettingError(f"zram swap set-up failed: {result.stderr.strip()[-300:]}")
        applied["swap"] = result.stdout.strip()
    module = configuration.damon_module
    if module:
        base = f"/sys/module/damon_{module['name']}/parameters"
        if not fs.exists(base):
            raise SystemSettingError(
                f"the guest kernel has no DAMON_{module['name'].upper()} ({base})"
            )
        ops = [Write(f"{base}/{k}", _module_value(v)) for k, v in module["parameters"].items()]
        fs.execute([*ops, Write(f"{base}/enabled", "Y")])
        applied["damon_module"] = fs.read_many(
            [f"{base}/{k}" for k in [*module["parameters"], "enabled"]]
        )
    return applied


def _module_value(value: Any) -> str:
    if isinstance(value, bool):
        return "Y" if value else "N"
    return str(value)


# ------------------------------------------------- memory before a run

COMPACT_MEMORY = "/proc/sys/vm/compact_memory"
BUDDYINFO = "/proc/buddyinfo"
HUGE_ORDER = 9  # 2 MiB blocks of 4 KiB pages (x86-64)


def free_huge_mib(buddyinfo: str | None, page_kib: int = 4) -> int | None:
    """MiB of free memory in blocks of at least 2 MiB, over all zones (/proc/buddyinfo)."""
    if buddyinfo is None:
        return None
    total_kib = 0
    for line in buddyinfo.splitlines():
        counts = line.split(",", 1)[-1].split()[2:]  # after "zone <name>"
        for order, count in enumerate(counts):
            if order >= HUGE_ORDER and count.isdigit():
                total_kib += int(count) * (page_kib << order)
    return total_kib // 1024


def settle_memory(machine: Machine, *, drop_caches: bool, compact_memory: bool) -> dict[str, Any]:
    """Drop the page cache (when ``drop_caches``), then compact memory, in one batch,
    before the agent starts; returns what was done (provenance).  Without compaction
    nothing happens here: the agent drops caches itself right before the workload.
    A kernel without compaction or a refused write is recorded, not an error."""
    if not compact_memory:
        return {"applied": False, "reason": "noise.compact_memory is off"}
    fs = machine.fs
    ops: list[Any] = [Exists(COMPACT_MEMORY), ReadIfExists(BUDDYINFO)]
    if drop_caches:
        # No sync here: the agent syncs and drops again right before sample 0.
        ops.append(WriteIfExists(DROP_CACHES, "3"))
    ops += [WriteIfExists(COMPACT_MEMORY, "1"), ReadIfExists(BUDDYINFO)]
    started = time.monotonic()
    try:
        values = fs.execute(ops)
    except FsError as exc:
        reason = f"not applied: {exc}"
        log.warning("%s: memory compaction %s", machine.name, reason)
        return {"applied": False, "reason": reason}
    if not values[0]:
        return {"applied": False, "reason": f"the kernel has no {COMPACT_MEMORY}"}
    return {
        "applied": True,
        "caches_dropped_first": drop_caches,
        "seconds": round(time.monotonic() - started, 3),  # one batch, its round trip included
        "free_huge_mib_before": free_huge_mib(values[1]),
        "free_huge_mib_after": free_huge_mib(values[-1]),
    }


# ------------------------------------------------- put back afterwards


SNAPSHOT_SCRIPT = r"""
f=/sys/kernel/mm/transparent_hugepage/enabled
[ -r $f ] && printf 'thp %s\n' "$(cat $f)"
tail -n +2 /proc/swaps | while read -r name type size used prio; do
  printf 'swap %s %s %s\n' "$name" "$type" "$prio"
done
[ -d /sys/module/zram ] && echo zram_loaded
z=/sys/block/zram0
if [ -e $z/disksize ]; then
  printf 'zram0_disksize %s\n' "$(cat $z/disksize)"
  printf 'zram0_comp %s\n' "$(cat $z/comp_algorithm 2>/dev/null)"
fi
# two processes for all parameters (a loop costs seconds on a slow machine)
set -- /sys/module/damon_*/parameters/*
if [ -e "$1" ]; then
  stat -c 'mode %a %n' "$@" 2>/dev/null
  grep -H '' "$@" 2>/dev/null | sed 's/^/value /'
fi
"""


@dataclass(frozen=True, slots=True)
class SwapDevice:
    name: str
    type: str
    priority: int


@dataclass(frozen=True, slots=True)
class SystemSettings:
    """What a run may change on a machine, as it was (see :data:`SNAPSHOT_SCRIPT`)."""

    thp_enabled: str | None
    swaps: tuple[SwapDevice, ...]
    zram_loaded: bool
    zram0_disksize: int | None
    zram0_comp: str | None
    module_params: dict[str, str] = field(default_factory=dict)  # writable params only

    @classmethod
    def parse(cls, text: str) -> SystemSettings:
        thp = None
        swaps: list[SwapDevice] = []
        zram_loaded = False
        disksize = None
        comp = None
        writable: set[str] = set()
        values: dict[str, str] = {}
        for line in text.splitlines():
            kind, _, rest = line.partition(" ")
            if kind == "thp":
                thp = _bracketed(rest)
            elif kind == "swap":
                parts = rest.split()
                if len(parts) >= 3:
                    swaps.append(SwapDevice(parts[0], parts[1], int(parts[2])))
            elif kind == "zram_loaded":
                zram_loaded = True
            elif kind == "zram0_disksize":
                disksize = int(rest.strip() or 0)
            elif kind == "zram0_comp":
                comp = _bracketed(rest) or None
            elif kind == "mode":
                mode, _, path = rest.partition(" ")
                if int(mode, 8) & 0o200:
                    writable.add(path.strip())
            elif kind == "value":
                path, _, value = rest.partition(":")
                values[path] = value.strip()
        params = {path: values[path] for path in sorted(writable) if path in values}
        return cls(thp, tuple(swaps), zram_loaded, disksize, comp, params)

    @classmethod
    def capture(cls, machine: Machine) -> SystemSettings:
        result = machine.run_script(SNAPSHOT_SCRIPT, timeout_s=60)
        if result.exit_status != 0:
            raise SystemSettingError(
                f"{machine.name}: cannot read THP/swap/zram settings: "
                f"{result.stderr.strip()[-200:]}"
            )
        return cls.parse(result.stdout)

    def to_dict(self) -> dict[str, Any]:
        return {
            "thp_enabled": self.thp_enabled,
            "swaps": [f"{s.name} ({s.type}, priority {s.priority})" for s in self.swaps],
            "zram_loaded": self.zram_loaded,
            "zram0_disksize": self.zram0_disksize,
            "zram0_comp": self.zram0_comp,
            "module_params": dict(self.module_params),
        }


def _bracketed(text: str) -> str:
    """The selected word of a sysfs choice list (``always [madvise] never`` -> madvise)."""
    match = re.search(r"\[([^\]]+)\]", text)
    return match.group(1) if match else text.strip()


ZRAM0 = "/dev/zram0"


def restore_steps(before: SystemSettings, now: SystemSettings) -> list[tuple[str, str]]:
    """``(what, command)`` pairs that put ``before`` back given the state ``now`` (in
    order; none when equal).  ``what`` is the command to show a human if it fails."""
    steps: list[tuple[str, str]] = []
    if before.thp_enabled and now.thp_enabled != before.thp_enabled:
        steps.append((f"echo {before.thp_enabled} > {THP_ENABLED}",) * 2)
    before_names = [s.name for s in before.swaps]
    now_names = [s.name for s in now.swaps]
    zram0_was_swap = ZRAM0 in before_names
    zram0_changed = (now.zram0_disksize, now.zram0_comp) != (
        before.zram0_disksize,
        before.zram0_comp,
    ) or now.zram_loaded != before.zram_loaded
    swaps_changed = now_names != before_names or zram0_changed
    if swaps_changed:
        for name in now_names:
            if name not in before_names or (name == ZRAM0 and zram0_changed):
                steps.append((f"swapoff {shlex.quote(name)}",) * 2)
        if zram0_changed or (zram0_was_swap and ZRAM0 not in now_names):
            if not before.zram_loaded:
                # right after swapoff and reset the module may still be busy for a moment
                steps.append(
                    (
                        "echo 1 > /sys/block/zram0/reset; modprobe -r zram",
                        "echo 1 > /sys/block/zram0/reset 2>/dev/null; i=0; "
                        "until modprobe -r zram; do i=$((i+1)); [ $i -lt 50 ] || exit 1; "
                        "sleep 0.2; done",
                    )
                )
            elif before.zram0_disksize:
                script = ["echo 1 > /sys/block/zram0/reset"]
                if before.zram0_comp:
                    script.append(f"echo {before.zram0_comp} > /sys/block/zram0/comp_algorithm")
                script.append(f"echo {before.zram0_disksize} > /sys/block/zram0/disksize")
                steps.append((" && ".join(script), " && ".join(script)))
            elif now.zram0_disksize:
                steps.append(("echo 1 > /sys/block/zram0/reset",) * 2)
        for swap in before.swaps:
            if swap.name in now_names and not (swap.name == ZRAM0 and zram0_changed):
                continue
            prio = f"-p {swap.priority} " if swap.priority >= 0 else ""
            command = f"swapon {prio}{shlex.quote(swap.name)}"
            if swap.name == ZRAM0:
                command = f"mkswap {ZRAM0} >/dev/null && {command}"
            steps.append((command, command))
    params_now = now.module_params
    changed = {
        path: value
        for path, value in before.module_params.items()
        if params_now.get(path) is not None and params_now[path] != value
    }
    # A module is switched off before its parameters change and on after.
    enables = {p: v for p, v in changed.items() if p.endswith("/enabled")}
    ordered = [(p, v) for p, v in enables.items() if v in ("N", "n", "0")]
    ordered += [(p, v) for p, v in changed.items() if p not in enables]
    ordered += [(p, v) for p, v in enables.items() if v not in ("N", "n", "0")]
    for path, value in ordered:
        steps.append((f"echo {shlex.quote(value)} > {shlex.quote(path)}",) * 2)
    return steps


def restore_script(before: SystemSettings, now: SystemSettings) -> str:
    """A POSIX sh script that puts ``before`` back, given the state ``now``; "" if equal.

    Every step runs even if an earlier one fails; failures are printed as
    ``restore-failed <what>`` lines and make the exit status 1.
    """
    steps = restore_steps(before, now)
    if not steps:
        return ""
    lines = ["rc=0"]
    # `what` is the command to give a human when the step fails
    for what, command in steps:
        lines.append(
            f"( {command} ) >/dev/null 2>&1 || {{ echo restore-failed {shlex.quote(what)}; rc=1; }}"
        )
    lines.append("exit $rc")
    return "\n".join(lines) + "\n"


def restore_settings(machine: Machine, before: SystemSettings) -> list[str]:
    """Put ``before`` back; returns what could not be restored (empty: all done)."""
    now = SystemSettings.capture(machine)
    script = restore_script(before, now)
    if not script:
        return []
    log.info("%s: restoring system settings", machine.name)
    result = machine.run_script(script, timeout_s=600)
    failed = [
        line.split(" ", 1)[1] for line in result.stdout.splitlines() if line.startswith("restore-")
    ]
    if result.exit_status != 0 and not failed:
        failed = [f"the restore script (exit {result.exit_status}): {result.stderr.strip()[-200:]}"]
    after = SystemSettings.capture(machine)
    if not failed:
        # whatever still differs, as the commands that would fix it
        failed = [what for what, _ in restore_steps(before, after)]
    return failed


@contextlib.contextmanager
def preserved_settings(machine: Machine) -> Iterator[SystemSettings]:
    """Record THP/swap/zram/DAMON module settings; put them back when the block ends,
    however it ends.  A restore failure is an error unless another is on its way."""
    before = SystemSettings.capture(machine)
    failed: list[str] = []
    try:
        yield before
    except BaseException:
        try:
            failed = restore_settings(machine, before)
        except DamonEvalError as exc:
            failed = [str(exc)]
        if failed:
            log.error("%s", _restore_failure(machine, failed))
        raise
    failed = restore_settings(machine, before)
    if failed:
        raise SystemSettingError(_restore_failure(machine, failed))


def _restore_failure(machine: Machine, failed: list[str]) -> str:
    return (
        f"{machine.name}: could not put its settings back; run by hand there: {'; '.join(failed)}"
    )
