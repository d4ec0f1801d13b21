"""Guest lifecycle pieces without QEMU: preparation, saved-state keys, pinning, cleanup."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from fakekernel import FakeKernel

from damon_eval.errors import GuestError
from damon_eval.fs import CommandResult, LocalFs
from damon_eval.guest import capabilities, detached
from damon_eval.guest import launch as launch_mod
from damon_eval.guest.cache import Image
from damon_eval.guest.machine import Guest
from damon_eval.guest.running import RunningGuest
from damon_eval.guest.state import SavedState, state_key, state_key_inputs
from damon_eval.machines.preparation import Preparation


@pytest.fixture
def image(tmp_path) -> Image:
    directory = tmp_path / "image"
    directory.mkdir()
    for name in ("base.qcow2", "vmlinuz", "initrd.img", "known_hosts"):
        (directory / name).write_text("x")
    (directory / "ssh").mkdir()
    (directory / "ssh/id_ed25519").write_text("x")
    manifest = {
        "key": "k1",
        "build_id": "b1",
        "kernel_release": "6.12.117+deb13-amd64",
        "spec": {"kernel_cmdline": [], "suite": "trixie"},
    }
    (directory / "manifest.json").write_text(json.dumps(manifest))
    return Image.load(directory)


def test_preparation_digest_follows_content(tmp_path):
    source = tmp_path / "agent.c"
    source.write_text("int main(void) { return 0; }\n")
    prep = Preparation(uploads=((source, "/root/agent.c"),), commands=("cc -o a agent.c",))
    first = prep.digest()
    assert first == Preparation(((source, "/root/agent.c"),), ("cc -o a agent.c",)).digest()
    source.write_text("int main(void) { return 1; }\n")
    assert prep.digest() != first
    assert Preparation(((source, "/root/b.c"),), ("cc -o a agent.c",)).digest() != prep.digest()
    assert Preparation(((source, "/root/agent.c"),), ()).digest() != prep.digest()
    assert Preparation().digest() == Preparation().digest()
    with pytest.raises(GuestError, match="cannot read preparation file"):
        Preparation(uploads=((tmp_path / "missing.c", "/x"),)).digest()


class _RecordingGuest:
    name = "g"

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.commands: list[str] = []
        self.uploads: list[tuple[str, str]] = []

    def run(self, cmd: str, timeout_s: float) -> CommandResult:
        self.commands.append(cmd)
        status = self.statuses.pop(0) if self.statuses else 0
        return CommandResult(status, "", "cc: error: boom\n" if status else "")

    def put(self, local, remote) -> None:
        self.uploads.append((str(local), remote))


def test_preparation_apply_uploads_then_runs(tmp_path):
    source = tmp_path / "agent.c"
    source.write_text("x")
    guest = _RecordingGuest([])
    Preparation(((source, "/opt/de/agent.c"),), ("make -C /opt/de",)).apply(guest)
    assert guest.uploads == [(str(source), "/opt/de/agent.c")]
    assert guest.commands == ["mkdir -p '/opt/de'", "make -C /opt/de"]


def test_failed_preparation_command_is_an_error():
    guest = _RecordingGuest([2])
    with pytest.raises(GuestError, match=r"'cc x.c' failed in guest g with exit status 2.*boom"):
        Preparation(commands=("cc x.c",)).apply(guest)


def _key(image: Image, **changes) -> str:
    params = dict(
        vcpus=2, memory_mib=2048, accel="tcg", preparation_digest="p",
        qemu_binary="/usr/bin/qemu-system-x86_64", qemu_version="7.2.22",
    )  # fmt: skip
    params.update(changes)
    return state_key(state_key_inputs(image, **params))


def test_state_key_covers_everything_a_restore_depends_on(image):
    base = _key(image)
    assert base == _key(image)
    assert len(base) == 16
    for change in (
        {"vcpus": 4},
        {"memory_mib": 4096},
        {"accel": "kvm"},
        {"preparation_digest": "q"},
        {"qemu_version": "8.2.0"},
    ):
        assert _key(image, **change) != base, change
    # The QEMU binary's directory does not matter, only its name and version.
    assert _key(image, qemu_binary="/opt/bin/qemu-system-x86_64") == base
    # -icount changes the argv (single-threaded TCG): a state of its own.
    icount = _key(image, icount="shift=0,sleep=off")
    assert icount not in (base, _key(image, icount="shift=auto"))
    assert _key(image, icount=None) == base
    # A rebuilt image (same key, new build) invalidates saved states.
    manifest = json.loads(image.manifest_path.read_text())
    image.manifest_path.write_text(json.dumps({**manifest, "build_id": "b2"}))
    assert _key(image) != base


def test_saved_state_detects_a_changed_disk_half(tmp_path):
    state = SavedState(tmp_path / "s1")
    state.path.mkdir()
    assert "booted.qcow2 is missing" in state.problem()
    state.booted_path.write_bytes(b"disk")
    state.state_path.write_bytes(b"ram")
    stat = state.booted_path.stat()
    state.info_path.write_text(
        json.dumps({"booted_size": stat.st_size, "booted_mtime_ns": stat.st_mtime_ns})
    )
    assert state.problem() is None
    state.booted_path.write_bytes(b"disk, changed")
    assert state.problem() == "booted.qcow2 changed after the state was saved"


def _guest(image: Image, tmp_path: Path, **changes) -> Guest:
    workdir = tmp_path / "run"
    workdir.mkdir(exist_ok=True)
    sockets = tmp_path / "sock"
    sockets.mkdir(exist_ok=True)
    overlay = workdir / "disk.qcow2"
    overlay.write_text("overlay")
    params = dict(
        name="g1", image=image, accel="tcg", vcpus=2, memory_mib=2048, workdir=workdir,
        socket_dir=sockets, overlay_path=overlay, keep_overlay=False, boot_kind="restore",
        ssh_port=40022, qemu_version="7.2.22", pid=os.getpid(), argv=["qemu"],
        state_key="s1", boot_seconds=3.2,
    )  # fmt: skip
    params.update(changes)
    return Guest(**params)


def test_pin_vcpus_maps_each_vcpu_thread(image, tmp_path, monkeypatch):
    guest = _guest(image, tmp_path, vcpus=3)
    monkeypatch.setattr(Guest, "vcpu_threads", lambda self: {0: 101, 1: 102, 2: 103})
    calls: list[tuple[int, set[int]]] = []
    monkeypatch.setattr(os, "sched_setaffinity", lambda tid, cpus: calls.append((tid, cpus)))
    assert guest.pin_vcpus([0, 1]) == {0: 0, 1: 1, 2: 0}
    assert calls == [(101, {0}), (102, {1}), (103, {0})]

    def refuse(tid, cpus):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "sched_setaffinity", refuse)
    with pytest.raises(GuestError, match=r"cannot pin vCPU 0 .*thread 101"):
        guest.pin_vcpus([0])


def test_topology_is_checked():
    with pytest.raises(GuestError, match="vcpus must be a positive integer"):
        launch_mod.check_topology(0, 2048, None)
    with pytest.raises(GuestError, match="memory_mib must be an integer >= 256"):
        launch_mod.check_topology(2, 100, None)
    with pytest.raises(GuestError, match=r"cannot pin vCPUs to host CPU\(s\) \[9999\]"):
        launch_mod.check_topology(2, 2048, [0, 9999])
    launch_mod.check_topology(2, 2048, [min(os.sched_getaffinity(0))])


def test_overlay_is_deleted_unless_kept(image, tmp_path):
    guest = _guest(image, tmp_path)
    guest.cleanup_files()
    assert not guest.overlay_path.exists() and not guest.socket_dir.exists()
    kept = _guest(image, tmp_path, keep_overlay=True)
    kept.cleanup_files()
    assert kept.overlay_path.exists()


def test_anonymous_guest_workdir_goes_but_failed_starts_keep_the_console(image, tmp_path):
    guest = _guest(image, tmp_path, owns_workdir=True)
    guest.console_log_path.write_text("boot log")
    guest.cleanup_files(remove_workdir=False)
    assert guest.console_log_path.exists() and not guest.overlay_path.exists()
    guest.cleanup_files()
    assert not guest.workdir.exists()


def test_facts(image, tmp_path):
    guest = _guest(image, tmp_path)
    guest._kernel_release = "6.12.117+deb13-amd64"
    facts = guest.facts()
    assert facts["accel"] == "tcg" and facts["vcpus"] == 2 and facts["memory_mib"] == 2048
    assert facts["image_key"] == "k1" and facts["image_build_id"] == "b1"
    assert facts["kernel_release"] == "6.12.117+deb13-amd64"
    assert facts["boot_kind"] == "restore" and facts["state_key"] == "s1"
    assert "CLOCK_MONOTONIC" in facts["clock_note"]
    assert facts["kernel"] is None, "an image built before kernels were recorded"
    kernel = {"form": "source", "release": "6.12.107-damon-eval", "source_sha256": "ab"}
    manifest = {**image.manifest(), "kernel": kernel}
    image.manifest_path.write_text(json.dumps(manifest))
    assert guest.facts()["kernel"] == kernel


def test_stopped_guest_refuses_commands(image, tmp_path):
    guest = _guest(image, tmp_path)
    with pytest.raises(GuestError, match="guest g1 is stopped"):
        guest.run("true", timeout_s=1)


def test_attach_unknown_guest_says_how_to_start_one(tmp_path, monkeypatch):
    monkeypatch.setenv("DAMON_EVAL_CACHE", str(tmp_path))
    with pytest.raises(GuestError, match=r"no guest named 'nope'.*damon-eval guest boot"):
        Guest.attach("nope")


def test_sweep_removes_what_a_killed_harness_left(tmp_path, monkeypatch):
    monkeypatch.setenv("DAMON_EVAL_CACHE", str(tmp_path))
    workdir = detached.guests_dir() / "dead"
    workdir.mkdir(parents=True)
    overlay = workdir / "disk.qcow2"
    overlay.write_text("x")
    sockets = tmp_path / "sockets"
    sockets.mkdir()
    record = {
        "name": "dead", "pid": 2**22 + 12345, "overlay": str(overlay),
        "socket_dir": str(sockets), "keep_overlay": False,
    }  # fmt: skip
    (workdir / "guest.json").write_text(json.dumps(record))
    assert detached.list_guests()[0]["alive"] is False
    detached.sweep_stale_guests()
    assert not overlay.exists() and not sockets.exists()
    assert (workdir / "guest.stale.json").exists()
    assert detached.list_guests() == []


# ------------------------------------------------------------- capabilities


def _fake_kernel(root: Path) -> FakeKernel:
    kernel = FakeKernel(root)
    thp = root / "sys/kernel/mm/transparent_hugepage"
    thp.mkdir(parents=True)
    (thp / "enabled").write_text("[always] madvise never\n")
    (thp / "defrag").write_text("always defer defer+madvise [madvise] never\n")
    (root / "dev/virtio-ports").mkdir(parents=True)
    (root / "dev/virtio-ports/org.damon-eval.ctl").write_text("")
    return kernel


class _FakeGuest:
    accel = "tcg"
    boot_kind = "cold"
    boot_seconds = 31.5

    def __init__(self, fs: LocalFs) -> None:
        self.fs = fs

    def run(self, cmd: str, timeout_s: float) -> CommandResult:
        return CommandResult(0, "6.12.117+deb13-amd64\ntracefs=yes\nzram=yes\n", "")


def test_capabilities_from_a_fake_kernel(tmp_path):
    kernel = _fake_kernel(tmp_path)
    before = kernel.snapshot()
    caps = capabilities.collect(_FakeGuest(kernel.fs))
    assert caps.kernel_release == "6.12.117+deb13-amd64"
    # DAMON facts come from damon_eval.damon's feature detection.
    assert caps.damon_interface == "sysfs"
    assert caps.avail_operations == ("vaddr", "fvaddr", "paddr")
    assert {"pageout", "hugepage", "nohugepage", "stat"} <= set(caps.scheme_actions or ())
    assert "update_schemes_stats" in (caps.state_commands or ())
    assert caps.damon_tracepoints == ("damon_aggregated", "damos_before_apply")
    assert caps.damon_aggregated_tracepoint and caps.tracefs_mounted and caps.zram_available
    assert not caps.debugfs_mounted
    assert caps.thp_enabled == "[always] madvise never"
    assert caps.control_device
    # The scratch kdamond it looked into is gone again and was never turned on.
    assert kernel.snapshot().keys() == before.keys() and kernel.nr_kdamonds() == 0
    assert not any(path.endswith("/state") for path, _ in kernel.writes)
    labels = [row[0] for row in caps.rows()]
    assert "DAMON operations" in labels and "DAMOS actions" in labels and "accelerator" in labels
    assert all(good for label, _, good in caps.rows() if label.startswith("DAMO"))
    assert caps.as_dict()["damon_aggregated_tracepoint"] is True


def test_capabilities_leave_existing_kdamonds_alone(tmp_path):
    kernel = _fake_kernel(tmp_path)
    kernel.seed_running_kdamond(operations="paddr", pid=77)
    before = kernel.snapshot()
    caps = capabilities.collect(_FakeGuest(kernel.fs))
    assert caps.avail_operations == ("vaddr", "fvaddr", "paddr")
    assert kernel.snapshot() == before and kernel.writes == []


def test_capabilities_without_damon(tmp_path):
    kernel = _fake_kernel(tmp_path)
    import shutil

    shutil.rmtree(tmp_path / "sys/kernel/mm/damon")
    caps = capabilities.collect(_FakeGuest(kernel.fs))
    assert caps.damon_interface is None and caps.avail_operations is None
    assert "DAMON not found" in caps.damon_notes[0]
    rows = {label: good for label, _, good in caps.rows()}
    assert rows["DAMON interface"] is False


def test_sweep_removes_sockets_and_overlay_of_a_killed_run_guest(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setenv("DAMON_EVAL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    # A run guest: its overlay lives in the run directory, not under the cache.
    overlay = tmp_path / "run" / "attempt-1" / ".guest" / "disk.qcow2"
    overlay.parent.mkdir(parents=True)
    overlay.write_text("x")
    dead = tmp_path / "tmp" / "damon-eval-dead"
    dead.mkdir()
    (dead / "qmp.sock").write_text("")
    (dead / detached.SOCKET_OWNER_FILE).write_text(
        json.dumps({"pid": 2**22 + 7, "overlay": str(overlay), "keep_overlay": False})
    )
    kept_overlay = tmp_path / "kept.qcow2"
    kept_overlay.write_text("x")
    kept = tmp_path / "tmp" / "damon-eval-kept"
    kept.mkdir()
    (kept / detached.SOCKET_OWNER_FILE).write_text(
        json.dumps({"pid": 2**22 + 8, "overlay": str(kept_overlay), "keep_overlay": True})
    )
    starting = tmp_path / "tmp" / "damon-eval-starting"  # no owner file yet: left alone
    starting.mkdir()
    detached.sweep_stale_guests()
    assert not dead.exists() and not overlay.exists()
    assert not kept.exists() and kept_overlay.exists()
    assert starting.exists()


_PANIC_CONSOLE = """\
[    2.081263] sched_clock: Marking stable (2048396352, 32517479)->(2088628264, -7714433)
[    2.083850] Oops: int3: 0000 [#1] PREEMPT SMP NOPTI
[    2.084339] RIP: 0010:sched_clock_cpu+0x9/0x1d0
[    2.091547] Kernel panic - not syncing: Fatal exception in interrupt
[    3.759971] Kernel Offset: 0x1800000 from 0xffffffff81000000
"""


class _FakeBoots:
    """Stands in for QEMU: each start is a `sleep`; bring-up follows a script of outcomes."""

    def __init__(self, outcomes: list[str], monkeypatch) -> None:
        self.outcomes = outcomes
        self.overlays: list[str] = []
        monkeypatch.setattr(launch_mod, "create_overlay", self._create_overlay)
        monkeypatch.setattr(launch_mod, "spawn", lambda argv, log_path, **_: self._spawn(log_path))
        monkeypatch.setattr(launch_mod.keys, "write_guest_known_hosts", lambda *a: None)
        monkeypatch.setattr(
            RunningGuest, "bring_up", lambda guest, restoring, deadline: self._bring_up(guest)
        )

    def _create_overlay(self, backing: Path, overlay: Path) -> None:
        assert not overlay.exists(), "an attempt reused the previous attempt's overlay"
        overlay.write_text(f"fresh {len(self.overlays)}")
        self.overlays.append(overlay.read_text())

    @staticmethod
    def _spawn(log_path: Path):
        import subprocess

        with open(log_path, "ab") as log_handle:
            return subprocess.Popen(["sleep", "30"], stdout=log_handle)

    def _bring_up(self, guest: Guest) -> None:
        outcome = self.outcomes.pop(0)
        if outcome == "panic":
            guest.console_log_path.write_text(_PANIC_CONSOLE)
            raise GuestError(f"guest {guest.name} died while booting")
        if outcome == "timeout":
            raise GuestError(f"guest {guest.name} did not finish booting")
        guest.console_log_path.write_text("[    9.0] login:\n")


def _launch(image: Image, tmp_path: Path, accel: str = "tcg", incoming: Path | None = None):
    return launch_mod.launch(
        Guest, image=image, name="boot1", workdir=tmp_path / "g", accel=accel, vcpus=2,
        memory_mib=2048, keep_overlay=False, detach=False, pin_cpus=None,
        qemu_binary="qemu-system-x86_64", version="7.2.22", backing=image.disk_path,
        incoming=incoming, state_key=None, timeout_s=60.0,
    )  # fmt: skip


def test_a_kernel_panic_while_booting_under_tcg_is_retried_on_a_fresh_overlay(
    image, tmp_path, monkeypatch, caplog
):
    boots = _FakeBoots(["panic", "panic", "ok"], monkeypatch)
    guest = _launch(image, tmp_path)
    try:
        assert guest.boot_attempts == 3 and boots.outcomes == []
        assert boots.overlays == ["fresh 0", "fresh 1", "fresh 2"]
        assert guest.console_log_path.read_text() == "[    9.0] login:\n"
        for attempt in (1, 2):  # each panicked boot's console is kept to debug
            kept = guest.workdir / f"console.attempt{attempt}.log"
            assert "Oops: int3" in kept.read_text()
        assert "retry 2 of 2" in caplog.text and "Oops: int3: 0000" in caplog.text
        record = json.loads((guest.workdir / detached.GUEST_FILE).read_text())
        assert record["boot_attempts"] == 3 and guest.facts()["boot_attempts"] == 3
    finally:
        guest.kill()


def test_a_third_panic_or_a_timeout_is_not_retried(image, tmp_path, monkeypatch):
    _FakeBoots(["panic", "panic", "panic", "ok"], monkeypatch)
    with pytest.raises(GuestError, match="died while booting"):
        _launch(image, tmp_path)
    boots = _FakeBoots(["timeout", "ok"], monkeypatch)
    with pytest.raises(GuestError, match="did not finish booting"):
        _launch(image, tmp_path / "t")
    assert boots.outcomes == ["ok"]


@pytest.mark.parametrize("accel, restoring", [("kvm", False), ("tcg", True)])
def test_a_panic_is_retried_only_on_tcg_cold_boots(image, tmp_path, monkeypatch, accel, restoring):
    boots = _FakeBoots(["panic", "ok"], monkeypatch)
    incoming = tmp_path / "state.zst" if restoring else None
    with pytest.raises(GuestError, match="died while booting"):
        _launch(image, tmp_path, accel=accel, incoming=incoming)
    assert boots.outcomes == ["ok"]
