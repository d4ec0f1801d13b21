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
  while any other runs; :func:`foreign_kdamond_threads` also refuses when a
  kdamond thread runs that the sysfs interface does not show (DAMON_RECLAIM,
  DAMON_LRU_SORT, ...).
* **Settings are put back**: :class:`SystemSettings` records THP, swap devices,
  zram and DAMON module parameters before a run and :func:`restore_settings`
  writes the old values back afterwards, also after failures and on
  SIGINT/SIGTERM/SIGHUP.
"""

from __future__ import annotations

import contextlib
import logging
import re
import shlex
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from damon_eval.errors import ConfigError, DamonBusyError, DamonEvalError, RemoteError
from damon_eval.fs import CommandResult, ShellFs
from damon_eval.machines import (
    PERSISTENT_BASE,
    machine_facts,
    map_prefix,
    prepare_machine,
    terminate_as_interrupt,
)
from damon_eval.ssh import (
    RevokedHostKey,
    SshSession,
    SshTarget,
    UnknownHostKey,
    fingerprint,
    host_pattern,
)

log = logging.getLogger(__name__)

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

    def prepare(self, preparation: Any) -> str:
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


# ---------------------------------------------------------------- kdamonds


def foreign_kdamond_threads(machine: Any, ours: set[int]) -> list[tuple[int, str]]:
    """``(pid, comm)`` of kdamond threads not in ``ours``: DAMON busy with something else.

    Catches kdamonds that the sysfs interface does not list, such as those of
    DAMON_RECLAIM or DAMON_LRU_SORT.  (A fake tree's ``/proc`` for --root.)
    """
    from damon_eval.machines import kernel_path

    proc = shlex.quote(kernel_path(machine, "/proc"))
    result = machine.run(
        f"for d in {proc}/[0-9]*; do read -r c < $d/comm 2>/dev/null || continue; "
        'case "$c" in kdamond*) echo "${d##*/} $c";; esac; done; true',
        timeout_s=60,
    )
    found = []
    for line in result.stdout.splitlines():
        pid, _, comm = line.strip().partition(" ")
        if pid.isdigit() and int(pid) not in ours:
            found.append((int(pid), comm))
    return found


def refuse_if_damon_busy(machine: Any, controller: Any) -> None:
    """Refuse, naming it, when any kdamond runs that damon-eval did not start."""
    statuses = controller.status()
    foreign = [s for s in statuses if s.running and not s.ours]
    if foreign:
        names = ", ".join(
            f"kdamond {s.index} (pid {s.pid}, {s.operations or 'unknown operations'})"
            for s in foreign
        )
        raise DamonBusyError(
            f"DAMON on {machine.name} is busy: {names} runs and was not started by damon-eval; "
            "damon-eval never touches other kdamonds. Stop it first (or use another machine)"
        )
    ours = {s.pid for s in statuses if s.running and s.pid}
    threads = foreign_kdamond_threads(machine, ours)
    if threads:
        names = ", ".join(f"{comm} (pid {pid})" for pid, comm in threads)
        raise DamonBusyError(
            f"DAMON on {machine.name} is busy: kernel thread(s) {names} run outside the sysfs "
            "interface (DAMON_RECLAIM, DAMON_LRU_SORT or another user); damon-eval never "
            "touches other kdamonds. Turn them off first"
        )


# --------------------------------------------------------- system settings

THP_ENABLED = "/sys/kernel/mm/transparent_hugepage/enabled"

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
    def capture(cls, machine: Any) -> SystemSettings:
        result = machine.run_script(SNAPSHOT_SCRIPT, timeout_s=60)
        if result.exit_status != 0:
            raise RemoteError(
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


def restore_settings(machine: Any, before: SystemSettings) -> list[str]:
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
def preserved_settings(machine: Any) -> Iterator[SystemSettings]:
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
        raise RemoteError(_restore_failure(machine, failed))


def _restore_failure(machine: Any, failed: list[str]) -> str:
    return (
        f"{machine.name}: could not put its settings back; run by hand there: {'; '.join(failed)}"
    )


# ------------------------------------------------------------ measured runs


def remote_run_factory(options: RemoteOptions):
    """A ``guest_factory`` for :func:`damon_eval.measure.run.execute_run`: the run goes to
    the remote machine, prepared for the campaign, with its settings restored afterwards."""
    from damon_eval.damon.controller import DamonController, OwnershipRegistry
    from damon_eval.measure.run import campaign_preparation

    @contextlib.contextmanager
    def factory(campaign: Any, work_dir: Path) -> Iterator[RemoteMachine]:
        with terminate_as_interrupt(), RemoteMachine.connect(options) as machine:
            machine.require_root()
            # Before anything changes there: a kdamond we did not start means hands off.
            registry = OwnershipRegistry(work_dir / "owned-kdamonds.json")
            refuse_if_damon_busy(machine, DamonController(machine.fs, registry=registry))
            machine.prepare(campaign_preparation(campaign))
            with preserved_settings(machine):
                yield machine

    return factory
