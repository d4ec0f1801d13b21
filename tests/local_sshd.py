"""A private OpenSSH server on 127.0.0.1 for tests: own config, host key, port and pid file.

It never touches the system's sshd configuration or host keys: everything
lives in a temporary directory, and the process is stopped at the end.  It
needs root (sshd's privilege separation) and ``/usr/sbin/sshd`` (Debian
package ``openssh-server``; its service need not run).  The only thing outside
the directory is sshd's privilege-separation directory ``/run/sshd``, created
empty when missing, as the package's own service would.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from damon_eval.guest import keys
from damon_eval.machines.ssh_keys import host_pattern

SSHD = "/usr/sbin/sshd"


def unavailable_reason() -> str | None:
    """Why a private sshd cannot run here, or None."""
    if not Path(SSHD).is_file():
        return f"{SSHD} is missing (apt-get install openssh-server)"
    if os.geteuid() != 0:
        return "a private sshd needs root (privilege separation)"
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class LocalSshd:
    """``with LocalSshd(tmp_path) as sshd: ...``: root logs in with :attr:`client_key`."""

    directory: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    def __post_init__(self) -> None:
        self.directory = Path(self.directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.host = keys.generate_ed25519("test-sshd-host")
        self.client = keys.generate_ed25519("test-client")
        self.host_key_path = self.directory / "ssh_host_ed25519_key"
        keys.write_private_key(self.host_key_path, self.host.private_openssh)
        self.client_key = self.directory / "id_ed25519"
        keys.write_private_key(self.client_key, self.client.private_openssh)
        (self.directory / "id_ed25519.pub").write_text(self.client.public_line + "\n")
        self.authorized_keys = self.directory / "authorized_keys"
        self.authorized_keys.write_text(self.client.public_line + "\n")
        self.authorized_keys.chmod(0o600)
        self.log_path = self.directory / "sshd.log"
        self.config_path = self.directory / "sshd_config"
        # No `Subsystem sftp`: the remote code must not need SFTP.
        self.config_path.write_text(
            f"Port {self.port}\n"
            "ListenAddress 127.0.0.1\n"
            f"HostKey {self.host_key_path}\n"
            f"PidFile {self.directory / 'sshd.pid'}\n"
            f"AuthorizedKeysFile {self.authorized_keys}\n"
            "PermitRootLogin prohibit-password\n"
            "PubkeyAuthentication yes\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
            "UsePAM no\n"
            "StrictModes no\n"
            "PrintMotd no\n"
            "LogLevel VERBOSE\n"
        )

    def known_hosts_line(self, host: str = "127.0.0.1") -> str:
        return keys.known_hosts_line(host_pattern(host, self.port), self.host.public_line)

    def write_known_hosts(self, path: Path | None = None) -> Path:
        path = path or self.directory / "known_hosts"
        path.write_text(self.known_hosts_line())
        return path

    def start(self, timeout_s: float = 20.0) -> LocalSshd:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        check = subprocess.run([SSHD, "-t", "-f", str(self.config_path)], capture_output=True,
                               text=True, check=False)  # fmt: skip
        if check.returncode != 0:
            raise RuntimeError(f"sshd rejects the test config: {check.stderr.strip()}")
        log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(self.config_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"sshd exited: {self.log_path.read_text()[-500:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.settimeout(2)
                    if sock.recv(64).startswith(b"SSH-"):
                        return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"sshd did not listen on port {self.port}: {self.log_path.read_text()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None

    def __enter__(self) -> LocalSshd:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def ssh_agent(directory: Path, *key_paths: Path) -> dict[str, str]:
    """Start an ssh-agent with a socket in ``directory``, load keys; returns its environment
    (stop it with :func:`stop_agent`)."""
    if not shutil.which("ssh-agent"):
        raise RuntimeError("ssh-agent is missing (openssh-client)")
    sock = directory / "agent.sock"
    out = subprocess.run(["ssh-agent", "-s", "-a", str(sock)], capture_output=True, text=True,
                         check=True).stdout  # fmt: skip
    env = {"SSH_AUTH_SOCK": str(sock)}
    for part in out.split(";"):
        part = part.strip()
        if part.startswith("SSH_AGENT_PID="):
            env["SSH_AGENT_PID"] = part.split("=", 1)[1]
    for key in key_paths:
        subprocess.run(["ssh-add", "-q", str(key)], env={**os.environ, **env}, check=True,
                       capture_output=True)  # fmt: skip
    return env


def stop_agent(env: dict[str, str]) -> None:
    pid = env.get("SSH_AGENT_PID")
    if pid:
        subprocess.run(["ssh-agent", "-k"], env={**os.environ, **env}, capture_output=True,
                       check=False)  # fmt: skip
