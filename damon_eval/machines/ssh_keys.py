"""Host keys for SSH: one known_hosts file, nothing unknown or revoked accepted.

Used by :mod:`damon_eval.machines.ssh` for guests (the image's pinned key) and
``--ssh`` hosts (the user's known_hosts).  ``@revoked`` keys are refused,
``@cert-authority`` lines skipped (paramiko does not check host certificates).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


def host_pattern(host: str, port: int) -> str:
    """The name OpenSSH and paramiko look a host key up under."""
    return host if port == 22 else f"[{host}]:{port}"


# ------------------------------------------------------------------ host keys


class UnknownHostKey(Exception):
    """The host key is not in the known_hosts file (raised by ``RejectUnknownHost``)."""

    def __init__(self, hostname: str, key: Any) -> None:
        super().__init__(f"Server {hostname!r} not found in known_hosts")
        self.hostname = hostname
        self.key = key


class RevokedHostKey(Exception):
    """The server presented a key the known_hosts file marks ``@revoked``."""

    def __init__(self, hostname: str, key: Any) -> None:
        super().__init__(f"host key of {hostname!r} is marked @revoked")
        self.hostname = hostname
        self.key = key


def _missing_host_key_policy():
    import paramiko

    class RejectUnknownHost(paramiko.RejectPolicy):
        """RejectPolicy that keeps the presented key, so the error can show its fingerprint."""

        def missing_host_key(self, client, hostname, key):
            raise UnknownHostKey(hostname, key)

    return RejectUnknownHost()


@dataclass(frozen=True, slots=True)
class KnownHosts:
    """The usable entries of one known_hosts file.

    ``host_keys`` holds plain and hashed (``|1|...``) entries; lines with
    markers are not host keys: ``@revoked`` keys are kept in ``revoked`` and
    refused, ``@cert-authority`` lines are skipped (paramiko does not check
    host certificates), as are lines paramiko cannot parse.
    """

    path: Path
    host_keys: Any  # paramiko.HostKeys
    revoked: tuple[Any, ...] = ()
    skipped: tuple[int, ...] = ()


def load_known_hosts(path: Path) -> KnownHosts:
    """Parse ``path`` (raises FileNotFoundError/PermissionError like open())."""
    import paramiko
    from paramiko.hostkeys import HostKeyEntry, InvalidHostKey

    host_keys = paramiko.HostKeys()
    revoked: list[Any] = []
    skipped: list[int] = []
    text = Path(path).read_text(errors="replace")
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        marker = None
        if line.startswith("@"):
            marker, _, line = line.partition(" ")
            line = line.strip()
            if marker != "@revoked":
                skipped.append(number)
                continue
        try:
            entry = HostKeyEntry.from_line(line, number)
        except (paramiko.SSHException, InvalidHostKey, ValueError):
            entry = None
        if entry is None:
            skipped.append(number)
            continue
        if marker == "@revoked":
            revoked.append(entry.key)
            continue
        for name in entry.hostnames:
            host_keys.add(name, entry.key.get_name(), entry.key)
    return KnownHosts(Path(path), host_keys, tuple(revoked), tuple(skipped))


def pin_client(
    client: Any, known_hosts_path: Path, *, remember_unknown: bool = False
) -> KnownHosts:
    """Make a :class:`paramiko.SSHClient` accept only the keys in ``known_hosts_path``.

    Replaces any previously loaded keys (Fabric starts with an empty set and
    AutoAddPolicy) and rejects every unknown host or key: with
    :class:`~paramiko.client.RejectPolicy`, or with ``remember_unknown`` a
    subclass of it that raises :class:`UnknownHostKey` carrying the key.
    """
    import paramiko

    known = load_known_hosts(known_hosts_path)
    client.set_missing_host_key_policy(
        _missing_host_key_policy() if remember_unknown else paramiko.RejectPolicy()
    )
    host_keys = client.get_host_keys()
    host_keys.clear()
    for hostname, entries in known.host_keys.items():
        for keytype, key in entries.items():
            host_keys.add(hostname, keytype, key)
    return known


def fingerprint(key: Any) -> str:
    """OpenSSH-style ``SHA256:...`` fingerprint of a paramiko key."""
    return blob_fingerprint(key.asbytes())


def blob_fingerprint(blob: bytes) -> str:
    """OpenSSH-style ``SHA256:...`` fingerprint of a public key's wire-format blob."""
    import base64
    import hashlib

    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


def is_host_key_error(exc: BaseException) -> bool:
    import paramiko

    if isinstance(exc, paramiko.BadHostKeyException | UnknownHostKey | RevokedHostKey):
        return True
    return isinstance(exc, paramiko.SSHException) and "not found in known_hosts" in str(exc)


def is_auth_error(exc: BaseException) -> bool:
    import paramiko

    if isinstance(exc, paramiko.AuthenticationException):
        return True
    # paramiko's words when no key was offered or accepted and no password given
    return isinstance(exc, paramiko.SSHException) and "No authentication methods" in str(exc)
