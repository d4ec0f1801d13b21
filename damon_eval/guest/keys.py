"""SSH keys of an image, and host-key pinning.

Each image gets, at build time, a fresh ed25519 *client* key pair (the
harness's identity; its public half goes into the guest's
``/root/.ssh/authorized_keys``) and a fresh ed25519 *host* key (the guest's
only sshd host key).  The host key's public half is pinned in the image's
``known_hosts``; connections load exactly that and use paramiko's
:class:`~paramiko.client.RejectPolicy`, so a guest presenting any other key is
refused (:func:`damon_eval.machines.ssh_keys.pin_client`).  No passwords
exist anywhere.

Keys are made with ``cryptography`` (a paramiko dependency), so ``ssh-keygen``
is not needed.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path

from damon_eval.errors import GuestError
from damon_eval.machines.ssh_keys import blob_fingerprint, host_pattern

# The name under which the host key is pinned in an image's known_hosts.  The
# per-guest file (see write_guest_known_hosts) re-keys it to "[127.0.0.1]:PORT".
HOST_KEY_ALIAS = "damon-eval-guest"


@dataclass(frozen=True, slots=True)
class KeyPair:
    """An OpenSSH private key (PEM text) and its ``ssh-ed25519 AAAA...`` public line."""

    private_openssh: str
    public_line: str


def generate_ed25519(comment: str) -> KeyPair:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    return KeyPair(private, f"{public.decode()} {comment}")


def write_private_key(path: Path, text: str) -> None:
    """Write a private key readable by its owner only (0600 from creation on)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(path, 0o600)


def known_hosts_line(host: str, public_line: str) -> str:
    """One known_hosts line: ``host keytype base64``."""
    keytype, blob = public_line.split()[:2]
    return f"{host} {keytype} {blob}\n"


def read_pinned_key(known_hosts_path: Path) -> tuple[str, str]:
    """(keytype, base64) of the :data:`HOST_KEY_ALIAS` entry of an image's known_hosts."""
    try:
        lines = known_hosts_path.read_text().splitlines()
    except FileNotFoundError:
        raise GuestError(
            f"pinned host key file {known_hosts_path} is missing; "
            "rebuild the image with `damon-eval guest build --force`"
        ) from None
    for line in lines:
        fields = line.split()
        if len(fields) >= 3 and fields[0] == HOST_KEY_ALIAS:
            return fields[1], fields[2]
    raise GuestError(
        f"{known_hosts_path} has no entry for {HOST_KEY_ALIAS}; "
        "rebuild the image with `damon-eval guest build --force`"
    )


def write_guest_known_hosts(image_known_hosts: Path, out_path: Path, port: int) -> Path:
    """A known_hosts file pinning the image's host key for ``127.0.0.1:port``."""
    keytype, blob = read_pinned_key(image_known_hosts)
    out_path.write_text(known_hosts_line(host_pattern("127.0.0.1", port), f"{keytype} {blob}"))
    return out_path


def fingerprint_sha256(public_line: str) -> str:
    """OpenSSH-style ``SHA256:...`` fingerprint of a public key line."""
    return blob_fingerprint(base64.b64decode(public_line.split()[1]))
