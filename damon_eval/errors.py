"""The exception hierarchy.

Every error a user can cause or fix derives from :class:`DamonEvalError`; the
CLI turns it into a one-line message and exit status 2.  Anything else is a bug
and keeps its traceback.
"""

from __future__ import annotations


class DamonEvalError(Exception):
    """Root of all user-facing errors."""


class ConfigError(DamonEvalError):
    """Invalid configuration, campaign, scheme or command-line input."""


class SchemeSyntaxError(ConfigError):
    """A scheme text or JSON that cannot be parsed."""


class FsError(DamonEvalError):
    """A file-system operation failed (sysfs, procfs, debugfs, tracefs).

    ``errno`` holds the error number when it is known (EBUSY, EACCES, ...).
    For a failed batch, ``index`` is the position of the failing operation and
    ``completed`` the results of the operations before it (they took effect).
    """

    def __init__(
        self,
        message: str,
        *,
        path: str = "",
        errno: int | None = None,
        index: int | None = None,
        completed: tuple[object, ...] = (),
    ):
        super().__init__(message)
        self.path = path
        self.errno = errno
        self.index = index
        self.completed = completed


class DamonError(DamonEvalError):
    """DAMON is missing, busy, or refused a request."""


class DamonBusyError(DamonError):
    """DAMON is in use by something the harness does not own."""


class GuestError(DamonEvalError):
    """A guest could not be built, booted, reached, or died."""


class RemoteError(GuestError):
    """A remote machine (``--ssh``) could not be reached, refused us, or the link died.

    A :class:`GuestError` because the run code treats both machines alike
    (failure kind ``guest``: the machine, not the workload, failed).
    """


class RecordFormatError(DamonEvalError):
    """A record file is malformed or truncated."""


class OutputError(DamonEvalError):
    """An output file could not be written (missing or read-only directory, disk full)."""
