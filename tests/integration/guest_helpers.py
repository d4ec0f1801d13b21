"""Helpers shared by the guest integration tests (importable: tests/integration is on sys.path)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "damon_eval"]
ACCEL = os.environ.get("DAMON_EVAL_TEST_ACCEL", "auto")


def missing_tools() -> list[str]:
    return [t for t in ("qemu-system-x86_64", "qemu-img", "mmdebstrap") if not shutil.which(t)]


def require_image_build(why_root: str) -> None:
    """Skip, saying why, unless this host can build a guest image (QEMU tools, mmdebstrap, root)."""
    missing = missing_tools()
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (apt-get install qemu-system-x86 mmdebstrap)")
    if os.geteuid() != 0:
        pytest.skip(why_root)


def source_kernel_or_skip(kernel: dict, opt_out: str, install_hint: str):
    """The cached build of ``kernel`` (a ``{source: ...}`` value) under this code's cache
    key, or None when it is to be built here; skips, saying why, when it can be neither.

    The key is the real one (source, configs, patches, the build code): a change to
    kernel_prepare.py means a new build, never a stale kernel that merely has the options.
    ``opt_out`` is the environment variable whose ``0`` turns the build off.
    """
    from damon_eval.errors import GuestError
    from damon_eval.guest.kernel_prepare import prepare_kernel
    from damon_eval.guest.kernels import identity_key, resolve_kernel

    source = Path(kernel["source"])
    if not source.exists():
        pytest.skip(
            f"kernel source {source} is missing ({install_hint}); its cache key is a hash of it"
        )
    choice = resolve_kernel(kernel)
    try:
        return prepare_kernel(choice, allow_build=False, progress=False)
    except GuestError:
        if os.environ.get(opt_out) != "0":
            return None
        key = identity_key(choice.identity())
        pytest.skip(
            f"the kernel cache has no build of {choice.describe()} for this code (key {key}) "
            f"and {opt_out}=0 turns building it off; build it (about 6 min on 2 cores) with "
            f"`damon-eval guest build --kernel '{json.dumps(kernel)}'`"
        )


def require_image():
    """The default spec's image (built if missing); skips, saying why, when it cannot be."""
    missing = missing_tools()
    if missing:
        pytest.skip(
            f"needs {', '.join(missing)} (apt-get install qemu-system-x86 qemu-utils mmdebstrap)"
        )
    from damon_eval.guest import cached_image, ensure_image, load_spec

    if cached_image(load_spec()) is None and os.geteuid() != 0:
        pytest.skip("the guest image is not cached and building it needs root")
    return ensure_image(progress=False)


def cli(*args: str, timeout: float = 600, check: bool = False) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [*CLI, *args], capture_output=True, text=True, cwd=REPO, timeout=timeout
    )  # fmt: skip
    if check:
        assert proc.returncode == 0, (
            f"damon-eval {' '.join(args)} exited {proc.returncode}: {proc.stderr}"
        )
    return proc


SNAKEMAKE = shutil.which("snakemake", path=str(Path(sys.executable).parent)) or "snakemake"


def run_snakemake(
    configfile: str | Path, results: Path, *args: str, timeout_s: float = 3000
) -> subprocess.CompletedProcess:
    """The pipeline on ``configfile`` with its results in ``results``, from the repository."""
    return subprocess.run(
        [SNAKEMAKE, "--configfile", str(configfile), "--config", f"results_dir={results}", *args],
        cwd=REPO, capture_output=True, text=True, timeout=timeout_s,
    )  # fmt: skip


def require_images_of(kernels: list) -> None:
    """Skip, saying why, unless the default spec's image with each of ``kernels`` is
    cached or can be built here (QEMU tools, mmdebstrap, root)."""
    missing = missing_tools()
    if missing:
        pytest.skip(
            f"needs {', '.join(missing)} (apt-get install qemu-system-x86 qemu-utils mmdebstrap)"
        )
    from damon_eval.guest import cached_image, load_spec

    uncached = [k for k in kernels if cached_image(load_spec().with_kernel(k)) is None]
    if uncached and os.geteuid() != 0:
        pytest.skip(f"the images of kernel(s) {uncached} are not cached and building needs root")


def gone(pid: int, timeout_s: float = 15.0) -> bool:
    """Whether ``pid`` has exited (or is a zombie) within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state == "Z":
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)


def qemu_processes() -> dict[int, str]:
    """pid -> command line of every live QEMU on this host."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and b"qemu-system" in argv[0] and not gone(int(entry.name), 0):
            found[int(entry.name)] = b" ".join(argv).decode(errors="replace")
        # other sessions' QEMUs are listed too: callers filter by what they started
    return found


def qemu_children_of(pid: int) -> list[int]:
    """Live QEMU processes whose parent is ``pid``."""
    children = []
    for qemu in qemu_processes():
        try:
            stat = Path(f"/proc/{qemu}/stat").read_text()
        except FileNotFoundError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            children.append(qemu)
    return children


def forget_guest(name: str) -> None:
    """Remove what a named test guest left in the cache (after its QEMU is gone)."""
    from damon_eval.guest.detached import guests_dir, sweep_stale_guests

    sweep_stale_guests()
    shutil.rmtree(guests_dir() / name, ignore_errors=True)


@contextmanager
def booted_guest(name: str) -> Iterator[object]:
    """``damon-eval guest boot --name NAME`` (a guest other processes can attach to by
    name), attached here; stopped with ``damon-eval guest stop`` afterwards."""
    from damon_eval.guest.machine import Guest

    boot = cli("guest", "boot", "--name", name, "--accel", ACCEL)
    try:
        assert boot.returncode == 0, f"guest boot failed: {boot.stderr}"
        yield Guest.attach(name)
    finally:
        stop = cli("guest", "stop", "--name", name, timeout=180)
        forget_guest(name)
        assert stop.returncode == 0, stop.stderr


# One campaign for every measured test run: the same workload list means the same
# preparation, so all runs restore one saved state (built once, ~1-2 min under TCG).
ZIGZAG_SCALE = 0.5
HOTCOLD_SCALE = 0.15
CONFIGS = ("orig", "rec", "prec", "thp", "ethp", "prcl")


def campaign_settings(**overrides: object) -> dict:
    settings = {
        "campaign": "itests",
        "guest": {"accel": ACCEL},
        "workloads": ["synthetic/hotcold", "synthetic/zigzag"],
        "workload_scale": HOTCOLD_SCALE,
        "workload_scales": {"synthetic/zigzag": ZIGZAG_SCALE},
        "configs": list(CONFIGS),
        "repeats": 1,
        "max_attempts": 2,
        "run_timeout_s": 600,
    }
    settings.update(overrides)
    return settings


def itest_campaign(**overrides: object):
    from damon_eval.config.campaign import campaign_from_dict

    return campaign_from_dict(campaign_settings(**overrides), "tests/integration (itests)")


def write_campaign(path: Path, **overrides: object) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(campaign_settings(**overrides)))
    return path


def run_one(campaign, workload_id: str, config: str, out_dir: Path, **request: object):
    """``execute_run`` of one run of ``campaign`` into ``out_dir``; returns (outcome, seconds)."""
    from damon_eval.config.runkey import RunKey
    from damon_eval.measure.plan import RunRequest
    from damon_eval.measure.run import execute_run

    started = time.monotonic()
    outcome = execute_run(
        RunRequest(
            campaign=campaign,
            key=RunKey.of(workload_id, config, 1),
            result_path=out_dir / "result.json",
            **request,
        )
    )
    return outcome, time.monotonic() - started
