"""SSH to a guest: the shared implementation in :mod:`damon_eval.ssh`, with guest defaults.

Guests log in with the image's client key only (no agent, no default keys),
accept only the image's pinned host key, retry while the guest boots, and
name the guest and its console's last lines in every error (``GuestError``).
"""

from __future__ import annotations

from damon_eval.ssh import (
    CONNECT_TIMEOUT_S,
    HOST_GRACE_S,
    KILL_AFTER_S,
    SESSION_OPEN_TIMEOUT_S,
    SFTP_TIMEOUT_S,
    SshSession,
    SshTarget,
    remote_command,
    script_command,
)

# Names from before the implementation was shared with remote machines.
guest_command = remote_command
guest_script_command = script_command

__all__ = [
    "CONNECT_TIMEOUT_S",
    "HOST_GRACE_S",
    "KILL_AFTER_S",
    "SESSION_OPEN_TIMEOUT_S",
    "SFTP_TIMEOUT_S",
    "SshSession",
    "SshTarget",
    "guest_command",
    "guest_script_command",
]
