"""What a guest offers the evaluation: ``damon-eval guest check``.

DAMON's interface, operations sets, scheme actions, state commands and
tracepoints come from :mod:`damon_eval.damon` feature detection
(``DamonController(fs).features(probe=True)``), the same code the runs use;
this module adds the guest's own facts (THP, zram, mounts, control channel,
accelerator, boot) with one SSH command for sysfs and one shell probe.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from damon_eval.damon.controller import DamonController
from damon_eval.damon.errors import DamonMissingError
from damon_eval.fs import Exists

if TYPE_CHECKING:
    from damon_eval.guest.machine import Guest

THP = "/sys/kernel/mm/transparent_hugepage"
CONTROL_DEVICE = "/dev/virtio-ports/org.damon-eval.ctl"


@dataclass(frozen=True, slots=True)
class Capabilities:
    kernel_release: str
    damon_interface: str | None
    avail_operations: tuple[str, ...] | None
    scheme_actions: tuple[str, ...] | None
    state_commands: tuple[str, ...] | None
    damon_tracepoints: tuple[str, ...]
    damon_notes: tuple[str, ...]
    tracefs_mounted: bool
    debugfs_mounted: bool
    thp_enabled: str
    thp_defrag: str
    zram_available: bool
    control_device: bool
    accel: str
    boot_kind: str
    boot_seconds: float

    @property
    def damon_aggregated_tracepoint(self) -> bool:
        return "damon_aggregated" in self.damon_tracepoints

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "damon_aggregated_tracepoint": self.damon_aggregated_tracepoint}

    def rows(self) -> list[tuple[str, str, bool]]:
        """(capability, value, good) rows for the table."""
        return [
            ("kernel", self.kernel_release, True),
            ("DAMON interface", self.damon_interface or "none", self.damon_interface is not None),
            ("DAMON operations", _words(self.avail_operations),
             {"vaddr", "paddr"} <= set(self.avail_operations or ())),
            ("DAMOS actions", _words(self.scheme_actions),
             {"pageout", "hugepage", "nohugepage", "stat"} <= set(self.scheme_actions or ())),
            ("DAMON state commands", _words(self.state_commands), self.state_commands is not None),
            ("DAMON tracepoints", _words(self.damon_tracepoints),
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


def _words(values: tuple[str, ...] | None) -> str:
    if values is None:
        return "unknown"
    return " ".join(values) if values else "none"


def collect(guest: Guest) -> Capabilities:
    fs = guest.fs
    try:
        # The guest is ours: the probe may create (and remove) an idle scratch kdamond.
        features = DamonController(fs).features(probe=True)
    except DamonMissingError as exc:
        features, missing = None, str(exc)
    (control,) = fs.execute([Exists(CONTROL_DEVICE)])
    thp = fs.read_optional([f"{THP}/enabled", f"{THP}/defrag"])
    probe = guest.run(
        "uname -r; "
        "grep -q ' /sys/kernel/tracing tracefs ' /proc/mounts && echo tracefs=yes; "
        "grep -q ' /sys/kernel/debug debugfs ' /proc/mounts && echo debugfs=yes; "
        "modprobe --dry-run zram >/dev/null 2>&1 && echo zram=yes",
        timeout_s=30,
    ).stdout.splitlines()
    return Capabilities(
        kernel_release=probe[0].strip() if probe else "unknown",
        damon_interface=features.interface if features else None,
        avail_operations=features.operations if features else None,
        scheme_actions=features.scheme_actions if features else None,
        state_commands=features.state_commands if features else None,
        damon_tracepoints=features.tracepoints if features else (),
        damon_notes=features.notes if features else (missing,),
        tracefs_mounted="tracefs=yes" in probe,
        debugfs_mounted="debugfs=yes" in probe,
        thp_enabled=(thp[f"{THP}/enabled"] or "").strip(),
        thp_defrag=(thp[f"{THP}/defrag"] or "").strip(),
        zram_available="zram=yes" in probe,
        control_device=bool(control),
        accel=guest.accel,
        boot_kind=guest.boot_kind,
        boot_seconds=guest.boot_seconds,
    )
