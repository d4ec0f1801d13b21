"""Choosing the accelerator: KVM when it really works, else TCG with a warning.

``/dev/kvm`` existing is not enough: on some hosts it refuses stock kernels
(QEMU aborts at once setting MSRs, or reports "KVM internal error").  So KVM
is *probed*: a short boot of the image's own kernel and initramfs with
``rdinit=`` pointing nowhere, which must run the kernel up to its "no init"
panic and make QEMU exit by itself (``panic=-1`` + ``-no-reboot``).  The
result is cached per host kernel, QEMU version and image build.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from damon_eval.atomic import atomic_write_json
from damon_eval.errors import GuestError
from damon_eval.paths import cache_dir

log = logging.getLogger(__name__)

ACCELERATORS = ("auto", "kvm", "tcg")
KVM_DEVICE = Path("/dev/kvm")
PROBE_TIMEOUT_S = 30.0
PROBE_CMDLINE = "console=ttyS0 panic=-1 rdinit=/damon-eval-kvm-probe init=/damon-eval-kvm-probe"


@dataclass(frozen=True, slots=True)
class ProbeResult:
    ok: bool
    reason: str


@dataclass(frozen=True, slots=True)
class AccelChoice:
    accel: str  # "kvm" | "tcg"
    reason: str
    warning: str | None = None


def kvm_device_usable(device: Path = KVM_DEVICE) -> ProbeResult:
    if not device.exists():
        return ProbeResult(False, f"{device} does not exist (no KVM module or no VT-x/AMD-V)")
    if not os.access(device, os.R_OK | os.W_OK):
        return ProbeResult(False, f"{device} is not readable and writable by this user")
    return ProbeResult(True, f"{device} is usable")


def probe_argv(qemu_binary: str, kernel: Path, initrd: Path | None, console: Path) -> list[str]:
    # fmt: off
    return [
        qemu_binary, "-nodefaults", "-no-user-config", "-no-reboot", "-display", "none",
        "-accel", "kvm", "-cpu", "host", "-smp", "1", "-m", "256M",
        "-kernel", str(kernel),
        *(["-initrd", str(initrd)] if initrd is not None else []),
        "-append", PROBE_CMDLINE,
        "-chardev", f"file,id=console,path={console}", "-serial", "chardev:console",
    ]
    # fmt: on


def judge_probe(exit_status: int | None, console_text: str, qemu_output: str) -> ProbeResult:
    """Whether a probe boot shows a working KVM (``exit_status`` None: it timed out)."""
    booted = "Linux version" in console_text
    panicked = "Kernel panic" in console_text
    if exit_status is None:
        detail = "KVM internal error" if "KVM internal error" in qemu_output else "no exit"
        return ProbeResult(False, f"probe boot under KVM hung ({detail})")
    if exit_status == 0 and booted and panicked:
        return ProbeResult(True, "the image's kernel boots under KVM")
    first = qemu_output.strip().splitlines()[:2]
    return ProbeResult(
        False,
        f"probe boot under KVM failed (exit status {exit_status}"
        + (f": {' / '.join(first)}" if first else "")
        + ")",
    )


def run_probe(qemu_binary: str, kernel: Path, initrd: Path | None) -> ProbeResult:
    device = kvm_device_usable()
    if not device.ok:
        return device
    from damon_eval.guest.qemu import spawn

    with tempfile.TemporaryDirectory(prefix="damon-eval-kvm-probe-") as tmp:
        console = Path(tmp) / "console.log"
        output = Path(tmp) / "qemu.log"
        proc = spawn(probe_argv(qemu_binary, kernel, initrd, console), output)
        try:
            status: int | None = proc.wait(timeout=PROBE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            status = None
            proc.kill()
            proc.wait()
        console_text = console.read_text(errors="replace") if console.exists() else ""
        return judge_probe(status, console_text, output.read_text(errors="replace"))


def probe_cache_path(qemu_version: str, image_build_id: str) -> Path:
    host = f"{platform.release()} {platform.version()}"
    key = hashlib.sha256(f"{host}\0{qemu_version}\0{image_build_id}".encode()).hexdigest()[:16]
    return cache_dir() / "accel" / f"kvm-probe-{key}.json"


def cached_probe(
    qemu_binary: str,
    qemu_version: str,
    kernel: Path,
    initrd: Path | None,
    image_build_id: str,
    runner: Callable[[str, Path, Path | None], ProbeResult] = run_probe,
) -> ProbeResult:
    """The KVM probe result, from the cache when this host/QEMU/image was probed before."""
    device = kvm_device_usable()
    if not device.ok:
        return device  # cheap and may change (permissions): never cached
    path = probe_cache_path(qemu_version, image_build_id)
    try:
        data = json.loads(path.read_text())
        return ProbeResult(bool(data["ok"]), str(data["reason"]))
    except (OSError, ValueError, KeyError):
        pass
    started = time.monotonic()
    result = runner(qemu_binary, kernel, initrd)
    atomic_write_json(
        path,
        {
            "ok": result.ok,
            "reason": result.reason,
            "probe_seconds": round(time.monotonic() - started, 2),
            "host_kernel": f"{platform.release()} {platform.version()}",
            "qemu_version": qemu_version,
            "image_build_id": image_build_id,
        },
    )
    return result


def choose_accel(requested: str, probe: Callable[[], ProbeResult]) -> AccelChoice:
    """Decide kvm or tcg; ``probe`` is only called when it matters."""
    if requested not in ACCELERATORS:
        raise GuestError(f"unknown accelerator {requested!r}; valid: {', '.join(ACCELERATORS)}")
    if requested == "tcg":
        return AccelChoice("tcg", "TCG requested")
    result = probe()
    if result.ok:
        return AccelChoice("kvm", result.reason)
    if requested == "kvm":
        raise GuestError(
            f"KVM was requested but does not work here: {result.reason}; "
            "use --accel tcg (slow emulation) or --accel auto"
        )
    warning = (
        f"KVM is not usable ({result.reason}); falling back to TCG emulation: guests run "
        "several times slower and timings are not comparable with KVM runs"
    )
    return AccelChoice("tcg", result.reason, warning)


def warn_tcg(message: str) -> None:
    """Log the TCG fall-back and show it on the terminal (rich), once per process."""
    if getattr(warn_tcg, "_shown", False):
        log.info("%s", message)
        return
    warn_tcg._shown = True  # type: ignore[attr-defined]
    log.warning("%s", message)
    from rich.console import Console

    console = Console(stderr=True)
    if console.is_terminal:
        console.print(f"[bold yellow]warning:[/bold yellow] {message}", highlight=False)
