"""A running guest: QEMU process, QMP, SSH, control channel; start and stop.

::

    with Guest.start(image, vcpus=2, memory_mib=2048, accel="auto",
                     fast_start=True, keep_overlay=False) as guest:
        result = guest.run("uname -r", timeout_s=30)       # CommandResult
        guest.fs.read("/sys/kernel/mm/transparent_hugepage/enabled")
        guest.put("agent.c", "/root/agent.c")
        guest.control.send_line("go"); guest.control.read_line(timeout_s=600)

Each guest writes to a per-run qcow2 overlay (deleted at the end unless
``keep_overlay``).  With ``fast_start`` the guest is restored from a saved
state (:mod:`damon_eval.guest.state`) instead of booted; its wall clock is set
from the host after the restore, and durations must be measured with
CLOCK_MONOTONIC inside the guest (the monotonic clock continues from the
moment the state was saved).

QEMU is killed by the kernel if the harness dies (parent death signal), so
no QEMU outlives the harness; ``damon-eval guest boot`` (``detach=True``) is
the one exception, by design: it leaves a guest up for ``exec``/``shell``/
``stop``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from damon_eval.atomic import atomic_write_json
from damon_eval.errors import GuestError
from damon_eval.fs import CommandResult, ShellFs
from damon_eval.guest import accel as accel_mod
from damon_eval.guest import keys
from damon_eval.guest.cache import Image
from damon_eval.guest.qemu import (
    QEMU_BINARY,
    MachineConfig,
    create_overlay,
    find_qemu,
    free_port,
    is_port_conflict,
    kernel_panic,
    qemu_argv,
    qemu_version,
    spawn,
    tail_lines,
)
from damon_eval.guest.qmp import QmpClient, QmpError
from damon_eval.guest.rootfs import READY_LINE
from damon_eval.machines.control import ControlChannel, ControlTimeout
from damon_eval.machines.preparation import Preparation
from damon_eval.machines.ssh import SshSession, SshTarget
from damon_eval.paths import cache_dir

log = logging.getLogger(__name__)

COLD_BOOT_TIMEOUT_S = {"kvm": 120.0, "tcg": 300.0}
RESTORE_TIMEOUT_S = {"kvm": 60.0, "tcg": 120.0}
PORT_ATTEMPTS = 5
TCG_PANIC_RETRIES = 2
"""Cold boots retried after the guest kernel panicked while booting under TCG.

QEMU 7.2's multi-threaded TCG can let a vCPU run kernel text that another vCPU
is patching (``Oops: int3`` in a static-key site such as ``sched_clock_cpu``);
fixed in QEMU 8.1, see docs/guest.md.  A retry boots a fresh overlay."""
SHUTDOWN_TIMEOUT_S = 30.0
GUEST_FILE = "guest.json"
CLOCK_NOTE = "durations: guest CLOCK_MONOTONIC; wall clock set from the host after a restore"


@dataclass
class Guest:
    """A running QEMU guest.  Make one with :meth:`start` or :meth:`attach`."""

    name: str
    image: Image
    accel: str
    vcpus: int
    memory_mib: int
    workdir: Path
    socket_dir: Path
    overlay_path: Path
    keep_overlay: bool
    boot_kind: str  # "cold" | "restore"
    ssh_port: int
    qemu_version: str
    pid: int
    argv: list[str]
    detached: bool = False
    state_key: str | None = None
    boot_seconds: float = 0.0
    boot_attempts: int = 1
    accel_reason: str = ""
    owns_workdir: bool = False
    console_path: Path | None = None
    process: subprocess.Popen | None = field(default=None, repr=False)
    _ssh: SshSession | None = field(default=None, repr=False)
    _control: ControlChannel | None = field(default=None, repr=False)
    _kernel_release: str | None = field(default=None, repr=False)
    _stopped: bool = field(default=False, repr=False)

    # ---------------------------------------------------------------- paths

    @property
    def console_log_path(self) -> Path:
        """The guest's serial console (``<run_dir>/console.log`` for runs)."""
        return self.console_path or self.workdir / "console.log"

    @property
    def qemu_log_path(self) -> Path:
        return self.workdir / "qemu.log"

    @property
    def qmp_socket(self) -> Path:
        return self.socket_dir / "qmp.sock"

    @property
    def control_socket(self) -> Path:
        return self.socket_dir / "ctl.sock"

    @property
    def known_hosts_path(self) -> Path:
        return self.workdir / "known_hosts"

    # ------------------------------------------------------------- starting

    @classmethod
    def start(
        cls,
        image: Image | Path | str,
        *,
        vcpus: int = 2,
        memory_mib: int = 2048,
        accel: str = "auto",
        fast_start: bool = True,
        keep_overlay: bool = False,
        preparation: Preparation | None = None,
        run_dir: Path | None = None,
        name: str | None = None,
        pin_cpus: list[int] | None = None,
        boot_timeout_s: float | None = None,
        detach: bool = False,
        qemu_binary: str = QEMU_BINARY,
    ) -> Guest:
        """Boot (or restore) a guest and wait until SSH answers.

        ``run_dir``: the run's directory: the console goes to
        ``<run_dir>/console.log``, the overlay, QEMU's log and SSH files to
        ``<run_dir>/.guest/`` (default: all in ``<cache>/guests/<name>/``).
        ``pin_cpus``: host CPUs for vCPU 0, 1, ...
        ``detach``: the guest survives this process (``damon-eval guest boot``).
        """
        if not isinstance(image, Image):
            image = Image.load(image)
        _check_topology(vcpus, memory_mib, pin_cpus)
        qemu = find_qemu(qemu_binary)
        version = qemu_version(qemu)
        choice = accel_mod.choose_accel(
            accel,
            lambda: accel_mod.cached_probe(
                qemu, version, image.kernel_path, image.initrd_path, image.build_id
            ),
        )
        if choice.warning:
            accel_mod.warn_tcg(choice.warning)
        preparation = preparation or Preparation()
        name = name or f"g{os.getpid()}-{secrets.token_hex(3)}"
        workdir = Path(run_dir) / ".guest" if run_dir is not None else guests_dir() / name
        console_path = Path(run_dir) / "console.log" if run_dir is not None else None
        sweep_stale_guests()
        common = dict(
            image=image, name=name, workdir=workdir, accel=choice.accel, vcpus=vcpus,
            memory_mib=memory_mib, keep_overlay=keep_overlay, detach=detach,
            pin_cpus=pin_cpus, qemu_binary=qemu, version=version,
            accel_reason=choice.reason, owns_workdir=run_dir is None and not detach,
            console_path=console_path,
        )  # fmt: skip
        if fast_start:
            from damon_eval.guest.state import ensure_saved_state

            state = ensure_saved_state(
                image,
                vcpus=vcpus,
                memory_mib=memory_mib,
                accel=choice.accel,
                preparation=preparation,
                qemu_binary=qemu,
                qemu_version=version,
                boot_timeout_s=boot_timeout_s,
            )
            return cls._launch(
                **common,
                backing=state.booted_path,
                incoming=state.state_path,
                state_key=state.key,
                timeout_s=boot_timeout_s or RESTORE_TIMEOUT_S[choice.accel],
            )
        guest = cls._launch(
            **common,
            backing=image.disk_path,
            incoming=None,
            state_key=None,
            timeout_s=boot_timeout_s or COLD_BOOT_TIMEOUT_S[choice.accel],
        )
        try:
            preparation.apply(guest)
        except BaseException:
            guest.shutdown()
            raise
        return guest

    @classmethod
    def _launch(
        cls,
        *,
        image: Image,
        name: str,
        workdir: Path,
        accel: str,
        vcpus: int,
        memory_mib: int,
        keep_overlay: bool,
        detach: bool,
        pin_cpus: list[int] | None,
        qemu_binary: str,
        version: str,
        backing: Path,
        incoming: Path | None,
        state_key: str | None,
        timeout_s: float,
        accel_reason: str = "",
        overlay_name: str = "disk.qcow2",
        owns_workdir: bool = False,
        console_path: Path | None = None,
    ) -> Guest:
        started = attempt_started = time.monotonic()
        workdir.mkdir(parents=True, exist_ok=True)
        overlay = workdir / overlay_name
        socket_dir = Path(tempfile.mkdtemp(prefix="damon-eval-"))
        guest: Guest | None = None
        port_conflicts = panics = 0
        try:
            for attempt in range(1, PORT_ATTEMPTS + TCG_PANIC_RETRIES + 1):
                overlay.unlink(missing_ok=True)  # every attempt boots a pristine disk
                create_overlay(backing.resolve(), overlay)
                port = free_port()
                config = MachineConfig(
                    accel=accel,
                    vcpus=vcpus,
                    memory_mib=memory_mib,
                    kernel_path=image.kernel_path,
                    initrd_path=image.initrd_path,
                    disk_path=overlay,
                    ssh_port=port,
                    qmp_socket=socket_dir / "qmp.sock",
                    control_socket=socket_dir / "ctl.sock",
                    console_log=console_path or workdir / "console.log",
                    cmdline_extra=image.kernel_cmdline_extra,
                    incoming_state=incoming,
                    name=name,
                    qemu_binary=qemu_binary,
                )
                for stale in (config.qmp_socket, config.control_socket, config.console_log):
                    stale.unlink(missing_ok=True)
                keys.write_guest_known_hosts(image.known_hosts_path, workdir / "known_hosts", port)
                argv = qemu_argv(config)
                (workdir / "qemu.log").write_text(f"# attempt {attempt}: {argv}\n")
                process = spawn(argv, workdir / "qemu.log", die_with_parent=not detach)
                # Lets the next start sweep this guest's sockets and overlay if our
                # process is killed, also for run guests whose workdir is a run dir.
                atomic_write_json(
                    socket_dir / SOCKET_OWNER_FILE,
                    {"pid": process.pid, "overlay": str(overlay), "keep_overlay": keep_overlay},
                )
                guest = cls(
                    name=name, image=image, accel=accel, vcpus=vcpus, memory_mib=memory_mib,
                    workdir=workdir, socket_dir=socket_dir, overlay_path=overlay,
                    keep_overlay=keep_overlay, boot_kind="restore" if incoming else "cold",
                    ssh_port=port, qemu_version=version, pid=process.pid, argv=argv,
                    detached=detach, state_key=state_key, process=process,
                    accel_reason=accel_reason, owns_workdir=owns_workdir,
                    console_path=console_path,
                )  # fmt: skip
                try:
                    guest._bring_up(incoming is not None, attempt_started + timeout_s)
                    break
                except GuestError:
                    output = tail_lines(workdir / "qemu.log", 20)
                    guest._kill()
                    if is_port_conflict(output) and port_conflicts < PORT_ATTEMPTS - 1:
                        port_conflicts += 1
                        log.info("port %d was taken; retrying with another port", port)
                        continue
                    panic = kernel_panic(guest.console_log_path)
                    if panic and accel == "tcg" and incoming is None and panics < TCG_PANIC_RETRIES:
                        panics += 1
                        kept = guest.console_log_path.with_name(f"console.attempt{attempt}.log")
                        guest.console_log_path.replace(kept)
                        log.warning(
                            "guest %s: the kernel panicked while booting under TCG (%s), a known "
                            "race of multi-threaded TCG in QEMU before 8.1; booting again on a "
                            "fresh overlay (retry %d of %d; that console is kept in %s)",
                            name, panic, panics, TCG_PANIC_RETRIES, kept,
                        )  # fmt: skip
                        attempt_started = time.monotonic()
                        continue
                    raise
            assert guest is not None
            guest.boot_attempts = panics + 1
            guest.boot_seconds = round(time.monotonic() - started, 2)
            if pin_cpus:
                guest.pin_vcpus(pin_cpus)
            guest._write_record()
            return guest
        except BaseException:
            if guest is not None:
                guest._kill()
                guest._cleanup_files(remove_workdir=False)  # keep console.log to debug
            else:
                shutil.rmtree(socket_dir, ignore_errors=True)
                if not keep_overlay:
                    overlay.unlink(missing_ok=True)
            raise

    def _bring_up(self, restoring: bool, deadline: float) -> None:
        try:
            qmp_timeout = max(1.0, min(30.0, deadline - time.monotonic()))
            with QmpClient.connect(self.qmp_socket, qmp_timeout, alive=self.is_alive) as qmp:
                if restoring:
                    self._finish_incoming(qmp, deadline)
        except QmpError as exc:
            raise GuestError(
                f"QEMU for guest {self.name} failed to start: {exc}; QEMU said: "
                f"{tail_lines(self.qemu_log_path, 6)}"
            ) from exc
        self._control = ControlChannel.connect(self.control_socket, 10.0, guest_name=self.name)
        if not restoring:
            self._wait_ready_line(deadline)
        self._ssh = SshSession(
            SshTarget(self.ssh_port, self.image.client_key_path, self.known_hosts_path),
            self.name,
            alive=self.is_alive,
            console_tail=self.console_tail,
        )
        try:
            self._ssh.connect(deadline, what="while booting")
        except GuestError as exc:
            if "did not answer SSH" in str(exc):
                raise GuestError(
                    f"guest {self.name} did not become reachable over SSH within the boot "
                    f"timeout ({self.boot_kind} boot, {self.accel}); console log "
                    f"{self.console_log_path}, last lines: {self.console_tail()}"
                ) from exc
            raise
        release = self.run("uname -r", timeout_s=30).stdout.strip()
        self._kernel_release = release
        if restoring:
            self.sync_clock()

    def _wait_ready_line(self, deadline: float) -> None:
        """Wait for the image's ready unit to announce sshd and eth0 on the control port."""
        assert self._control is not None
        while True:
            if not self.is_alive():
                raise GuestError(
                    f"guest {self.name} died while booting; console log "
                    f"{self.console_log_path}, last lines: {self.console_tail()}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise GuestError(
                    f"guest {self.name} did not finish booting within the boot timeout "
                    f"({self.boot_kind} boot, {self.accel}); console log "
                    f"{self.console_log_path}, last lines: {self.console_tail()}"
                )
            try:
                line = self._control.read_line(timeout_s=min(1.0, remaining))
            except ControlTimeout:
                continue
            except GuestError as exc:  # the channel closed: QEMU is exiting
                self._wait_exit(5)
                raise GuestError(
                    f"guest {self.name} died while booting ({exc}); QEMU said: "
                    f"{tail_lines(self.qemu_log_path, 3)}; console log {self.console_log_path}, "
                    f"last lines: {self.console_tail()}"
                ) from exc
            if line == READY_LINE:
                return
            log.info("guest %s said %r on the control port while booting", self.name, line)

    def _finish_incoming(self, qmp: QmpClient, deadline: float) -> None:
        """Wait for the incoming migration (the saved state) to load, then resume."""
        while True:
            status = qmp.command("query-status")["status"]
            if status != "inmigrate":
                break
            migration = qmp.command("query-migrate")
            if migration.get("status") == "failed":
                raise QmpError(f"restoring the saved state failed: {migration}")
            if time.monotonic() >= deadline:
                raise QmpError("the saved state did not load before the boot deadline")
            time.sleep(0.05)
        if status in ("paused", "postmigrate", "prelaunch"):
            qmp.command("cont")
        elif status != "running":
            raise QmpError(f"after loading the saved state the VM is {status!r}, not paused")

    def sync_clock(self) -> None:
        """Set the guest's wall clock from the host (after a restore it lags)."""
        stamp = f"{time.time():.6f}"
        seed = secrets.token_hex(32)
        result = self.run(
            f"date -u -s @{stamp} >/dev/null && printf %s {seed} > /dev/urandom", timeout_s=30
        )
        if result.exit_status != 0:
            raise GuestError(f"cannot set the clock of guest {self.name}: {result.stderr.strip()}")

    # -------------------------------------------------------------- attach

    @classmethod
    def attach(cls, name: str, workdir: Path | None = None) -> Guest:
        """The guest a ``damon-eval guest boot`` left running."""
        workdir = workdir or guests_dir() / name
        try:
            record = json.loads((workdir / GUEST_FILE).read_text())
        except FileNotFoundError:
            running = [g["name"] for g in list_guests() if g.get("alive")]
            raise GuestError(
                f"no guest named {name!r} (looked in {workdir}); running guests: "
                f"{', '.join(running) or 'none'}; start one with `damon-eval guest boot`"
            ) from None
        guest = cls(
            name=record["name"], image=Image.load(record["image"]), accel=record["accel"],
            vcpus=record["vcpus"], memory_mib=record["memory_mib"], workdir=workdir,
            socket_dir=Path(record["socket_dir"]), overlay_path=Path(record["overlay"]),
            keep_overlay=record["keep_overlay"], boot_kind=record["boot_kind"],
            ssh_port=record["ssh_port"], qemu_version=record["qemu_version"],
            pid=record["pid"], argv=record["argv"], detached=True,
            state_key=record.get("state_key"), boot_seconds=record["boot_seconds"],
            boot_attempts=record.get("boot_attempts", 1),
            accel_reason=record.get("accel_reason", ""),
            console_path=Path(record["console_log"]) if record.get("console_log") else None,
        )  # fmt: skip
        guest._kernel_release = record.get("kernel_release")
        if not guest.is_alive():
            raise GuestError(
                f"guest {name!r} is not running any more (QEMU pid {guest.pid} is gone); "
                f"last console lines: {guest.console_tail()}; clean up with "
                f"`damon-eval guest stop --name {name}`"
            )
        guest._ssh = SshSession(
            SshTarget(guest.ssh_port, guest.image.client_key_path, guest.known_hosts_path),
            guest.name,
            alive=guest.is_alive,
            console_tail=guest.console_tail,
        )
        guest._ssh.connect(time.monotonic() + 30.0, what="while reconnecting")
        return guest

    def _write_record(self) -> None:
        record = {
            "name": self.name,
            "image": str(self.image.path),
            "accel": self.accel,
            "accel_reason": self.accel_reason,
            "vcpus": self.vcpus,
            "memory_mib": self.memory_mib,
            "socket_dir": str(self.socket_dir),
            "overlay": str(self.overlay_path),
            "console_log": str(self.console_log_path),
            "keep_overlay": self.keep_overlay,
            "boot_kind": self.boot_kind,
            "boot_seconds": self.boot_seconds,
            "boot_attempts": self.boot_attempts,
            "ssh_port": self.ssh_port,
            "qemu_version": self.qemu_version,
            "pid": self.pid,
            "harness_pid": os.getpid(),
            "detached": self.detached,
            "argv": self.argv,
            "state_key": self.state_key,
            "kernel_release": self._kernel_release,
            "started_at": time.time(),
        }
        atomic_write_json(self.workdir / GUEST_FILE, record)
        (self.workdir / "ssh_config").write_text(
            f"# ssh -F {self.workdir / 'ssh_config'} guest\n"
            "Host guest\n"
            "  HostName 127.0.0.1\n"
            f"  Port {self.ssh_port}\n"
            "  User root\n"
            f"  IdentityFile {self.image.client_key_path}\n"
            "  IdentitiesOnly yes\n"
            f"  UserKnownHostsFile {self.known_hosts_path}\n"
            "  StrictHostKeyChecking yes\n"
            "  PasswordAuthentication no\n"
        )

    # ------------------------------------------------------------- commands

    def _session(self) -> SshSession:
        if self._ssh is None or self._stopped:
            raise GuestError(f"guest {self.name} is stopped")
        return self._ssh

    def run(self, cmd: str, timeout_s: float) -> CommandResult:
        """Run a shell command in the guest under ``timeout -k`` (exit 124 on timeout)."""
        return self._session().run(cmd, timeout_s)

    def run_script(self, script: str, timeout_s: float = 60.0) -> CommandResult:
        """Run a shell script sent on stdin, as one SSH command."""
        return self._session().run_script(script, timeout_s)

    @property
    def fs(self) -> ShellFs:
        """The guest's file systems (sysfs, procfs, tracefs): one SSH command per batch."""
        return ShellFs(runner=lambda script: self.run_script(script, 60.0),
                       description=f"guest {self.name}")  # fmt: skip

    def put(self, local_path: Path | str, remote_path: str) -> None:
        self._session().put(local_path, remote_path)

    def get(self, remote_path: str, local_path: Path | str) -> None:
        self._session().get(remote_path, local_path)

    def interactive_shell(self) -> int:
        return self._session().interactive_shell()

    def disconnect(self) -> None:
        """Close the SSH connection, so its sshd session leaves the guest; the
        next command reconnects.  Measurements run with no session open."""
        if self._ssh is not None:
            self._ssh.close()

    @property
    def control(self) -> ControlChannel:
        """Host end of the control port (guest: /dev/virtio-ports/org.damon-eval.ctl)."""
        if self._control is None:
            self._control = ControlChannel.connect(self.control_socket, 10.0, guest_name=self.name)
        return self._control

    def facts(self) -> dict[str, Any]:
        """What a result records about the guest it ran in."""
        manifest = self.image.manifest()
        return {
            "name": self.name,
            "kernel_release": self._kernel_release,
            "image_key": manifest["key"],
            "image_build_id": manifest["build_id"],
            "image_suite": manifest["spec"]["suite"],
            # Release, form, DAMON/THP config lines, config/source hashes, patches.
            "kernel": manifest.get("kernel"),
            "accel": self.accel,
            "accel_reason": self.accel_reason,
            "vcpus": self.vcpus,
            "memory_mib": self.memory_mib,
            "boot_kind": self.boot_kind,
            "boot_seconds": self.boot_seconds,
            "boot_attempts": self.boot_attempts,
            "state_key": self.state_key,
            "qemu_version": self.qemu_version,
            "clock_note": CLOCK_NOTE,
        }

    # ------------------------------------------------------------- vCPUs

    def vcpu_threads(self) -> dict[int, int]:
        """vCPU index -> host thread id (QMP query-cpus-fast)."""
        with QmpClient.connect(self.qmp_socket, 10.0, alive=self.is_alive) as qmp:
            cpus = qmp.command("query-cpus-fast")
        return {cpu["cpu-index"]: cpu["thread-id"] for cpu in cpus}

    def pin_vcpus(self, host_cpus: list[int]) -> dict[int, int]:
        """Pin vCPU i to host CPU ``host_cpus[i]``; returns the mapping used."""
        mapping: dict[int, int] = {}
        for index, thread in sorted(self.vcpu_threads().items()):
            host_cpu = host_cpus[index % len(host_cpus)]
            try:
                os.sched_setaffinity(thread, {host_cpu})
            except OSError as exc:
                raise GuestError(
                    f"cannot pin vCPU {index} (thread {thread}) of guest {self.name} to host "
                    f"CPU {host_cpu}: {exc}"
                ) from exc
            mapping[index] = host_cpu
        return mapping

    # ------------------------------------------------------------ lifecycle

    def is_alive(self) -> bool:
        if self.process is not None:
            return self.process.poll() is None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return _pid_is_qemu(self.pid)

    def console_tail(self, count: int = 8) -> str:
        return tail_lines(self.console_log_path, count)

    def qmp(self, command: str, timeout_s: float = 10.0, **arguments: Any) -> Any:
        """One QMP command (opens a short QMP session)."""
        with QmpClient.connect(self.qmp_socket, 10.0, alive=self.is_alive) as qmp:
            return qmp.command(command, timeout_s=timeout_s, **arguments)

    def _wait_exit(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.is_alive():
                return True
            time.sleep(0.05)
        return not self.is_alive()

    def _kill(self) -> None:
        if self.is_alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        if self.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=10)
        else:
            self._wait_exit(10)

    def _close_channels(self) -> None:
        if self._ssh is not None:
            self._ssh.close()
        if self._control is not None:
            self._control.close()
            self._control = None

    def shutdown(self, timeout_s: float = SHUTDOWN_TIMEOUT_S, clean: bool | None = None) -> None:
        """Stop the guest and QEMU; SIGKILL whatever is left after ``timeout_s``.

        ``clean`` (default: when the overlay is kept) powers the guest off
        (``systemctl poweroff``, else QMP ``system_powerdown``) so its disk is
        consistent; otherwise the guest syncs and QEMU quits at once (QMP
        ``quit``), as the overlay is thrown away.
        """
        if self._stopped:
            return
        self._stopped = True
        clean = self.keep_overlay if clean is None else clean
        try:
            if self.is_alive():
                if clean:
                    self._power_off(timeout_s)
                else:
                    if self._ssh is not None:
                        with contextlib.suppress(GuestError):
                            self._ssh.run("sync", timeout_s=10)
                    self._close_channels()
                    with contextlib.suppress(GuestError):
                        self.qmp("quit")
                    self._wait_exit(timeout_s)
                if self.is_alive():
                    log.warning("guest %s did not stop within %g s; killing QEMU", self.name,
                                timeout_s)  # fmt: skip
            self._kill()
        finally:
            self._close_channels()
            self._cleanup_files()

    def _power_off(self, timeout_s: float) -> None:
        requested = False
        if self._ssh is not None:
            with contextlib.suppress(GuestError):
                result = self._ssh.run("systemctl poweroff --no-block", timeout_s=20)
                requested = result.exit_status == 0
        self._close_channels()
        if not requested:
            with contextlib.suppress(GuestError):
                self.qmp("system_powerdown")
        if not self._wait_exit(timeout_s):
            log.info("guest %s did not power off in %g s; asking QEMU to quit", self.name,
                     timeout_s)  # fmt: skip
            with contextlib.suppress(GuestError):
                self.qmp("quit")
            self._wait_exit(10)

    def _cleanup_files(self, remove_workdir: bool = True) -> None:
        shutil.rmtree(self.socket_dir, ignore_errors=True)
        if not self.keep_overlay:
            self.overlay_path.unlink(missing_ok=True)
            if self.owns_workdir and remove_workdir:
                # An anonymous guest's directory under the cache holds nothing else of use.
                shutil.rmtree(self.workdir, ignore_errors=True)
                return
        record = self.workdir / GUEST_FILE
        if record.exists():
            with contextlib.suppress(OSError, ValueError):
                data = json.loads(record.read_text())
                data["stopped_at"] = time.time()
                atomic_write_json(self.workdir / "guest.stopped.json", data)
                record.unlink()

    def __enter__(self) -> Guest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


# ------------------------------------------------------------------ helpers


SOCKET_OWNER_FILE = "owner.json"


def guests_dir() -> Path:
    return cache_dir() / "guests"


def _check_topology(vcpus: int, memory_mib: int, pin_cpus: list[int] | None) -> None:
    if not isinstance(vcpus, int) or vcpus < 1:
        raise GuestError(f"vcpus must be a positive integer, got {vcpus!r}")
    if not isinstance(memory_mib, int) or memory_mib < 256:
        raise GuestError(f"memory_mib must be an integer >= 256, got {memory_mib!r}")
    if pin_cpus:
        available = sorted(os.sched_getaffinity(0))
        wrong = [cpu for cpu in pin_cpus if cpu not in available]
        if wrong:
            raise GuestError(
                f"cannot pin vCPUs to host CPU(s) {wrong}: this process may use {available}"
            )


def _pid_is_qemu(pid: int) -> bool:
    try:
        return "qemu" in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
    except OSError:
        return False


def list_guests() -> list[dict[str, Any]]:
    """Records of guests started with a workdir under the cache, with an ``alive`` flag."""
    found = []
    root = guests_dir()
    if not root.is_dir():
        return found
    for record_path in sorted(root.glob(f"*/{GUEST_FILE}")):
        try:
            record = json.loads(record_path.read_text())
        except (OSError, ValueError):
            continue
        pid = record.get("pid", -1)
        record["alive"] = Path(f"/proc/{pid}").exists() and _pid_is_qemu(pid)
        found.append(record)
    return found


def _sweep_socket_dirs() -> None:
    """Socket directories (and overlays) of QEMUs that are gone: a run guest's
    harness was killed (its workdir is in a run directory, not under the cache)."""
    for directory in Path(tempfile.gettempdir()).glob("damon-eval-*"):
        try:
            owner = json.loads((directory / SOCKET_OWNER_FILE).read_text())
            pid = int(owner["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not ours, or a launch still writing it
        if Path(f"/proc/{pid}").exists() and _pid_is_qemu(pid):
            continue
        if not owner.get("keep_overlay") and owner.get("overlay"):
            Path(owner["overlay"]).unlink(missing_ok=True)
        shutil.rmtree(directory, ignore_errors=True)


def sweep_stale_guests() -> None:
    """Remove what guests killed with their harness left behind (overlays, sockets)."""
    _sweep_socket_dirs()
    for record in list_guests():
        if record["alive"]:
            continue
        workdir = guests_dir() / record["name"]
        shutil.rmtree(record.get("socket_dir", "/nonexistent-damon-eval"), ignore_errors=True)
        if not record.get("keep_overlay"):
            Path(record["overlay"]).unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            (workdir / GUEST_FILE).rename(workdir / "guest.stale.json")
