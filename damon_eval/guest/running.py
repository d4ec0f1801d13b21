"""A running guest: QEMU process, QMP, SSH, control channel; bring-up and stop.

A :class:`RunningGuest` is what :func:`damon_eval.guest.launch.launch` returns
once QEMU answers QMP and the guest SSH: it runs commands, moves files, reads
the guest's file systems and stops QEMU.  :class:`damon_eval.guest.machine.Guest`
adds how to get one (``start``, ``attach``).

Durations must be measured with CLOCK_MONOTONIC inside the guest: after a
restore from a saved state the wall clock is set from the host, while the
monotonic clock continues from the moment the state was saved.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from damon_eval.errors import GuestError
from damon_eval.fs import CommandResult, ShellFs
from damon_eval.guest import detached
from damon_eval.guest.cache import Image
from damon_eval.guest.qemu import qemu_cpu, tail_lines
from damon_eval.guest.qmp import QmpClient, QmpError
from damon_eval.guest.rootfs import READY_LINE
from damon_eval.machines.control import ControlChannel, ControlTimeout
from damon_eval.machines.ssh import SshSession
from damon_eval.machines.ssh_transport import SshTarget

log = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT_S = 30.0
CLOCK_NOTE = "durations: guest CLOCK_MONOTONIC; wall clock set from the host after a restore"


@dataclass
class RunningGuest:
    """A running QEMU guest (see :class:`damon_eval.guest.machine.Guest` to get one)."""

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
    icount: str | None = None
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

    # ------------------------------------------------------------- bring-up

    def bring_up(self, restoring: bool, deadline: float) -> None:
        """Connect QMP (finish a restore), the control port and SSH before ``deadline``."""
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
        try:
            self.connect_ssh(deadline, what="while booting")
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

    def connect_ssh(self, deadline: float, what: str) -> None:
        """Open the SSH session to the guest (its key, its own known_hosts)."""
        self._ssh = SshSession(
            SshTarget(self.ssh_port, self.image.client_key_path, self.known_hosts_path),
            self.name,
            alive=self.is_alive,
            console_tail=self.console_tail,
        )
        self._ssh.connect(deadline, what=what)

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
                self.wait_exit(5)
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

    def write_record(self) -> None:
        """``guest.json`` (what :meth:`~damon_eval.guest.machine.Guest.attach` reads) and an
        ``ssh_config`` for ``ssh -F``."""
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
            "icount": self.icount,
            "kernel_release": self._kernel_release,
            "started_at": time.time(),
        }
        detached.write_record(
            self.workdir,
            record,
            f"# ssh -F {self.workdir / 'ssh_config'} guest\n"
            "Host guest\n"
            "  HostName 127.0.0.1\n"
            f"  Port {self.ssh_port}\n"
            "  User root\n"
            f"  IdentityFile {self.image.client_key_path}\n"
            "  IdentitiesOnly yes\n"
            f"  UserKnownHostsFile {self.known_hosts_path}\n"
            "  StrictHostKeyChecking yes\n"
            "  PasswordAuthentication no\n",
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
            "qemu_cpu": qemu_cpu(self.argv or []),
            "icount": self.icount,
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
        return detached.pid_is_qemu(self.pid)

    def console_tail(self, count: int = 8) -> str:
        return tail_lines(self.console_log_path, count)

    def qmp(self, command: str, timeout_s: float = 10.0, **arguments: Any) -> Any:
        """One QMP command (opens a short QMP session)."""
        with QmpClient.connect(self.qmp_socket, 10.0, alive=self.is_alive) as qmp:
            return qmp.command(command, timeout_s=timeout_s, **arguments)

    def wait_exit(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for QEMU to exit; whether it did."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.is_alive():
                return True
            time.sleep(0.05)
        return not self.is_alive()

    def kill(self) -> None:
        """SIGKILL QEMU and reap it (no shutdown, no cleanup)."""
        if self.is_alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        if self.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=10)
        else:
            self.wait_exit(10)

    def close_channels(self) -> None:
        """Close SSH and the control port (before QEMU is frozen or stopped)."""
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
                    self.close_channels()
                    with contextlib.suppress(GuestError):
                        self.qmp("quit")
                    self.wait_exit(timeout_s)
                if self.is_alive():
                    log.warning("guest %s did not stop within %g s; killing QEMU", self.name,
                                timeout_s)  # fmt: skip
            self.kill()
        finally:
            self.close_channels()
            self.cleanup_files()

    def _power_off(self, timeout_s: float) -> None:
        requested = False
        if self._ssh is not None:
            with contextlib.suppress(GuestError):
                result = self._ssh.run("systemctl poweroff --no-block", timeout_s=20)
                requested = result.exit_status == 0
        self.close_channels()
        if not requested:
            with contextlib.suppress(GuestError):
                self.qmp("system_powerdown")
        if not self.wait_exit(timeout_s):
            log.info("guest %s did not power off in %g s; asking QEMU to quit", self.name,
                     timeout_s)  # fmt: skip
            with contextlib.suppress(GuestError):
                self.qmp("quit")
            self.wait_exit(10)

    def cleanup_files(self, remove_workdir: bool = True) -> None:
        """Remove the sockets and (unless kept) the overlay; retire the record."""
        shutil.rmtree(self.socket_dir, ignore_errors=True)
        if not self.keep_overlay:
            self.overlay_path.unlink(missing_ok=True)
            if self.owns_workdir and remove_workdir:
                # An anonymous guest's directory under the cache holds nothing else of use.
                shutil.rmtree(self.workdir, ignore_errors=True)
                return
        detached.retire_record(self.workdir, time.time())

    def __enter__(self) -> RunningGuest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
