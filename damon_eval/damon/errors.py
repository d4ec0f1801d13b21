"""Errors of the DAMON layer, all :class:`~damon_eval.errors.DamonError` subclasses.

The CLI prints any of them as one line (exit status 2).
"""

from __future__ import annotations

import errno

from damon_eval.errors import DamonBusyError, DamonError, FsError

__all__ = [
    "DamonBusyError",
    "DamonError",
    "DamonMissingError",
    "DamonPermissionError",
    "DamonReadbackError",
    "DamonUnsupportedError",
    "translate_fs_error",
]


class DamonMissingError(DamonError):
    """The kernel has no usable DAMON interface (or it is not mounted)."""


class DamonPermissionError(DamonError):
    """Writing a DAMON file failed with EACCES or EPERM (not root, lockdown, ...)."""


class DamonReadbackError(DamonError):
    """A value read back after writing differs from what was written."""


class DamonUnsupportedError(DamonError):
    """The request needs a DAMON feature this kernel does not have."""


def translate_fs_error(exc: FsError, doing: str) -> DamonError:
    """One clear error per cause: permission, busy, or anything else."""
    if exc.errno in (errno.EACCES, errno.EPERM):
        return DamonPermissionError(
            f"{doing}: permission denied ({exc}); DAMON's files are writable by root only"
        )
    if exc.errno == errno.EBUSY:
        return DamonBusyError(f"{doing}: {exc} (DAMON is in use)")
    return DamonError(f"{doing}: {exc}")
