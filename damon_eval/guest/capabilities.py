"""What a guest offers the evaluation: ``damon-eval guest check``.

Minimal on purpose: DAMON feature detection proper lives in
:mod:`damon_eval.damon`; this reads sysfs through ``guest.fs`` (one SSH
command per batch) plus a few shell probes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from damon_eval.fs import Exists, FileSystem

if TYPE_CHECKING:
    from damon_eval.guest.machine import Guest

DAMON_SYSFS = "/sys/kernel/mm/damon/admin"
DAMON_DEBUGFS = "/sys/kernel/debug/damon"
TRACEFS = "/sys/kernel/tracing"
AGGREGATED_EVENT = f"{TRACEFS}/events/damon/damon_aggregated"
THP = "/sys/kernel/mm/transparent_hugepage"
KDAMONDS = f"{DAMON_SYSFS}/kdamonds"


@dataclass(frozen=True, slots=True)
class Capabilities:
    kernel_release: str
    damon_interfaces: tuple[str, ...]
    avail_operations: tuple[str, ...]
    damon_aggregated_tracepoint: bool
    tracefs_mounted: bool
    debugfs_mounted: bool
    thp_enabled: str
    thp_defrag: str
    zram_available: bool
    control_device: bool
    accel: str
    boot_kind: str
    boot_seconds: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def rows(self) -> list[tuple[str, str, bool]]:
        """(capability, value, good) rows for the table."""
        return [
            ("kernel", self.kernel_release, True),
            ("DAMON interface", ", ".join(self.damon_interfaces) or "none",
             bool(self.damon_interfaces)),
            ("DAMON avail_operations", " ".join(self.avail_operations) or "unknown",
             {"vaddr", "paddr"} <= set(self.avail_operations)),
            ("damon_aggregated tracepoint", _yes(self.damon_aggregated_tracepoint),
             self.damon_aggregated_tracepoint),
            ("tracefs / debugfs mounted",
             f"{_yes(self.tracefs_mounted)} / {_yes(self.debugfs_mounted)}",
             self.tracefs_mounted),
            ("THP enabled (modes)", self.thp_enabled or "missing", bool(self.thp_enabled)),
            ("THP defrag (modes)", self.thp_defrag or "missing", bool(self.thp_defrag)),
            ("zram", "module available" if self.zram_available else "missing",
             self.zram_available),
            ("control channel", _yes(self.control_device), self.control_device),
            ("accelerator", self.accel, self.accel == "kvm"),
            ("boot", f"{self.boot_kind}, {self.boot_seconds:.1f} s", True),
        ]  # fmt: skip


def _yes(value: bool) -> str:
    return "yes" if value else "no"


def avail_operations(fs: FileSystem) -> tuple[str, ...]:
    """Read ``avail_operations`` of a DAMON context, creating a scratch kdamond if none exists.

    Only touches DAMON when no kdamond exists (the guest's own DAMON is
    never disturbed) and removes what it created.
    """
    if not fs.exists(KDAMONDS):
        return ()
    existing = fs.read(f"{KDAMONDS}/nr_kdamonds").strip()
    if existing != "0":
        path = f"{KDAMONDS}/0/contexts/0/avail_operations"
        return tuple(fs.read(path).split()) if fs.exists(path) else ()
    fs.write(f"{KDAMONDS}/nr_kdamonds", "1")
    try:
        fs.write(f"{KDAMONDS}/0/contexts/nr_contexts", "1")
        path = f"{KDAMONDS}/0/contexts/0/avail_operations"
        values = tuple(fs.read(path).split()) if fs.exists(path) else ()
        fs.write(f"{KDAMONDS}/0/contexts/nr_contexts", "0")
    finally:
        fs.write(f"{KDAMONDS}/nr_kdamonds", "0")
    return values


def collect(guest: Guest) -> Capabilities:
    fs = guest.fs
    paths = [DAMON_SYSFS, DAMON_DEBUGFS, AGGREGATED_EVENT, "/dev/virtio-ports/org.damon-eval.ctl"]
    present = dict(zip(paths, fs.execute([Exists(p) for p in paths]), strict=True))
    thp = fs.read_optional([f"{THP}/enabled", f"{THP}/defrag"])
    probe = guest.run(
        "uname -r; "
        "grep -q ' /sys/kernel/tracing tracefs ' /proc/mounts && echo tracefs=yes; "
        "grep -q ' /sys/kernel/debug debugfs ' /proc/mounts && echo debugfs=yes; "
        "modprobe --dry-run zram >/dev/null 2>&1 && echo zram=yes",
        timeout_s=30,
    ).stdout.splitlines()
    interfaces = [name for name, path in (("sysfs", DAMON_SYSFS), ("debugfs", DAMON_DEBUGFS))
                  if present[path]]  # fmt: skip
    return Capabilities(
        kernel_release=probe[0].strip() if probe else "unknown",
        damon_interfaces=tuple(interfaces),
        avail_operations=avail_operations(fs) if present[DAMON_SYSFS] else (),
        damon_aggregated_tracepoint=present[AGGREGATED_EVENT],
        tracefs_mounted="tracefs=yes" in probe,
        debugfs_mounted="debugfs=yes" in probe,
        thp_enabled=(thp[f"{THP}/enabled"] or "").strip(),
        thp_defrag=(thp[f"{THP}/defrag"] or "").strip(),
        zram_available="zram=yes" in probe,
        control_device=present["/dev/virtio-ports/org.damon-eval.ctl"],
        accel=guest.accel,
        boot_kind=guest.boot_kind,
        boot_seconds=guest.boot_seconds,
    )
