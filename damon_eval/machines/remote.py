"""Machines that already have DAMON, reached with ``--ssh user@host[:port]``.

A user's test box or cloud VM: the harness owns nothing there, so

* **host keys** come from the user's ``known_hosts`` (``~/.ssh/known_hosts`` or
  ``--known-hosts FILE``); an unknown or changed key is refused with a
  one-line error that says how to check and add it.  Keys come from the
  ssh-agent and/or ``--identity FILE``; no password is ever sent or asked for.
* **Nothing resident**: the machine needs POSIX ``sh``, coreutils and
  ``base64``; kernel files are read and written by shell scripts
  (:class:`~damon_eval.fs.ShellFs`, one SSH command per batch), files move
  through ``cat`` (no SFTP server needed).  Running the agent and synthetic
  workloads needs ``gcc`` there: they are built once per content digest under
  ``/var/tmp/damon-eval/<digest>``.
* **DAMON safety**: the controller only uses kdamonds it created and refuses
  while any other runs; :func:`damon_eval.damon.controller.refuse_if_damon_busy`
  also refuses when a kdamond thread runs that the sysfs interface does not
  show (DAMON_RECLAIM, DAMON_LRU_SORT, ...).
* **Settings are put back**: :mod:`damon_eval.measure.system` records THP,
  swap devices, zram and DAMON module parameters before a run and writes the
  old values back afterwards, also after failures and on SIGINT/SIGTERM/SIGHUP.

:func:`damon_eval.machine_select.open_machine` connects and prepares one.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from damon_eval.errors import ConfigError, RemoteError
from damon_eval.fs import CommandResult, ShellFs
from damon_eval.machines.local import machine_facts
from damon_eval.machines.preparation import PERSISTENT_BASE, map_prefix, prepare_machine
from damon_eval.machines.ssh import SshSession
from damon_eval.machines.ssh_keys import RevokedHostKey, UnknownHostKey, fingerprint, host_pattern
from damon_eval.machines.ssh_transport import SshTarget

if TYPE_CHECKING:
    from damon_eval.machines.preparation import Preparation


DEFAULT_KNOWN_HOSTS = Path("~/.ssh/known_hosts")
DEFAULT_USER = "root"
CONNECT_DEADLINE_S = 30.0
TRANSFER_TIMEOUT_S = 3600.0

_SPEC = re.compile(
    r"^(?:(?P<user>[A-Za-z0-9_][A-Za-z0-9_.-]*)@)?"
    r"(?:\[(?P<v6>[0-9A-Fa-f:.%a-z]+)\]|(?P<host>[A-Za-z0-9_.-]+))"
    r"(?::(?P<port>[0-9]{1,5}))?$"
)


@dataclass(frozen=True, slots=True)
class RemoteSpec:
    """``user@host[:port]``; IPv6 addresses in brackets (``root@[::1]:2222``)."""

    user: str
    host: str
    port: int = 22

    @classmethod
    def parse(cls, text: str) -> RemoteSpec:
        match = _SPEC.match(text.strip())
        if match is None:
            raise ConfigError(
                f"--ssh {text!r}: expected USER@HOST or USER@HOST:PORT (IPv6: USER@[ADDR]:PORT), "
                "e.g. root@testbox or root@10.0.0.5:2222"
            )
        port = int(match["port"]) if match["port"] else 22
        if not 1 <= port <= 65535:
            raise ConfigError(f"--ssh {text!r}: port {port} is out of range 1..65535")
        return cls(match["user"] or DEFAULT_USER, match["v6"] or match["host"], port)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.user}@{host}" + (f":{self.port}" if self.port != 22 else "")


@dataclass(frozen=True, slots=True)
class RemoteOptions:
    """How to reach a remote machine (the ``--ssh`` family of options)."""

    spec: RemoteSpec
    known_hosts: Path | None = None
    identity: Path | None = None
    use_agent: bool = True
    connect_timeout_s: float = CONNECT_DEADLINE_S
    poll_interval_s: float = 10.0

    def known_hosts_path(self) -> Path:
        """The known_hosts file to trust; a missing file is an error saying how to make one."""
        given = self.known_hosts is not None
        path = (self.known_hosts or DEFAULT_KNOWN_HOSTS).expanduser()
        if not path.is_file():
            origin = "--known-hosts" if given else "the default known_hosts"
            raise ConfigError(
                f"{origin} file {path} does not exist; damon-eval only connects to hosts whose "
                f"key is listed there: check the key on {self.spec.host} "
                "(`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`), then "
                f"`ssh-keyscan {_keyscan_args(self.spec)}-t ed25519 {self.spec.host} >> {path}`"
            )
        return path

    def identity_path(self) -> Path | None:
        if self.identity is None:
            return None
        path = self.identity.expanduser()
        if not path.is_file():
            raise ConfigError(f"--identity {self.identity}: no such file (a private key)")
        return path


def _keyscan_args(spec: RemoteSpec) -> str:
    return f"-p {spec.port} " if spec.port != 22 else ""


_KEY_FILE_NAMES = {"ssh-ed25519": "ed25519", "ssh-rsa": "rsa", "ssh-dss": "dsa"}


def _short_type(key_type: str) -> str:
    if key_type.startswith("ecdsa"):
        return "ecdsa"
    return _KEY_FILE_NAMES.get(key_type, key_type)


def host_key_message(spec: RemoteSpec, known_hosts: Path, exc: BaseException) -> str:
    """One line: why the host key was refused and how to fix it after checking it."""
    import paramiko

    name = host_pattern(spec.host, spec.port)
    if isinstance(exc, paramiko.BadHostKeyException):
        got, expected = exc.key, exc.expected_key
        short = _short_type(got.get_name())
        return (
            f"{spec} presented the host key {got.get_name()} {fingerprint(got)} but {known_hosts} "
            f"lists {expected.get_name()} {fingerprint(expected)} for {name}: refusing to connect "
            "(the machine was reinstalled, or the connection is intercepted). If the change is "
            f"expected, check the new key on the machine (`ssh-keygen -lf "
            f"/etc/ssh/ssh_host_{short}_key.pub`), then `ssh-keygen -R '{name}' -f {known_hosts}` "
            f"and `ssh-keyscan {_keyscan_args(spec)}-t {short} {spec.host} >> {known_hosts}`"
        )
    if isinstance(exc, RevokedHostKey):
        return (
            f"{spec} presented the host key {exc.key.get_name()} {fingerprint(exc.key)}, which "
            f"{known_hosts} marks @revoked: refusing to connect"
        )
    key = exc.key if isinstance(exc, UnknownHostKey) else None
    presented = f" ({key.get_name()} {fingerprint(key)})" if key is not None else ""
    short = _short_type(key.get_name()) if key is not None else "ed25519"
    return (
        f"the host key of {name}{presented} is not in {known_hosts}; damon-eval never accepts "
        f"unknown host keys. Check the fingerprint on the machine itself (`ssh-keygen -lf "
        f"/etc/ssh/ssh_host_{short}_key.pub`), then add the key: `ssh-keyscan "
        f"{_keyscan_args(spec)}-t {short} {spec.host} >> {known_hosts}`"
    )


class RemoteMachine:
    """A machine reached over SSH that already has DAMON (see the module docstring)."""

    name: str
    persistent = True
    control = None  # no virtio port: the agent is driven through a FIFO and polled

    def __init__(self, options: RemoteOptions) -> None:
        self.options = options
        self.spec = options.spec
        self.name = str(options.spec)
        known_hosts = options.known_hosts_path()
        identity = options.identity_path()
        self.known_hosts = known_hosts
        self.target = SshTarget(
            port=self.spec.port,
            key_path=identity,
            known_hosts_path=known_hosts,
            host=self.spec.host,
            user=self.spec.user,
            use_agent=options.use_agent,
        )
        self.session = SshSession(
            self.target,
            self.name,
            kind="remote",
            error=RemoteError,
            host_key_message=lambda exc: host_key_message(self.spec, known_hosts, exc),
            retry_auth=False,
        )
        self.poll_interval_s = options.poll_interval_s
        self.prefix: str | None = None
        self._facts: dict[str, Any] | None = None

    @classmethod
    def connect(cls, options: RemoteOptions) -> RemoteMachine:
        """Connect now (errors surface here: host key, authentication, unreachable)."""
        machine = cls(options)
        machine.session.connect(time.monotonic() + options.connect_timeout_s)
        return machine

    # --------------------------------------------------------- commands

    def run(self, cmd: str, timeout_s: float) -> CommandResult:
        return self.session.run(cmd, timeout_s)

    def run_script(self, script: str, timeout_s: float = 60.0) -> CommandResult:
        return self.session.run_script(script, timeout_s)

    @property
    def fs(self) -> ShellFs:
        """sysfs/procfs/tracefs of the machine: one SSH command per batch."""
        return ShellFs(
            runner=lambda script: self.run_script(script, 60.0), description=f"remote {self.name}"
        )

    def put(self, local_path: Path | str, remote_path: str) -> None:
        self.session.put_stream(local_path, remote_path, TRANSFER_TIMEOUT_S)

    def get(self, remote_path: str, local_path: Path | str) -> None:
        self.session.get_stream(remote_path, local_path, TRANSFER_TIMEOUT_S)

    def localize(self, text: str) -> str:
        return map_prefix(text, self.prefix)

    def prepare(self, preparation: Preparation) -> str:
        """Upload and build ``preparation`` (cached by digest); paths map to its prefix."""
        self.prefix = prepare_machine(self, preparation, base=PERSISTENT_BASE)
        return self.prefix

    def facts(self) -> dict[str, Any]:
        if self._facts is None:
            self._facts = {**machine_facts(self), "ssh": self.name}
        return dict(self._facts)

    def require_root(self) -> None:
        """DAMON's sysfs files, THP and swap are root's: refuse early otherwise."""
        uid = self.run("id -u", timeout_s=30).stdout.strip()
        if uid != "0":
            raise RemoteError(
                f"{self.name}: damon-eval needs root there (DAMON's sysfs files, THP and swap "
                f"are root's), but {self.spec.user} has uid {uid or 'unknown'}; connect as "
                f"root@{self.spec.host}"
            )

    def is_alive(self) -> bool:
        try:
            return self.run("true", timeout_s=10).exit_status == 0
        except RemoteError:
            return False

    def disconnect(self) -> None:
        """Close the connection: between polls no sshd session of ours stays there."""
        self.session.close()

    def __enter__(self) -> RemoteMachine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.disconnect()
