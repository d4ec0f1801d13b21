"""Errors of the DAMON layer, all :class:`~damon_eval.errors.DamonError` subclasses.

The CLI prints any of them as one line (exit status 2).
"""

from __future__ import annotations

from damon_eval.errors import DamonBusyError, DamonError

__all__ = [
    "DamonBusyError",
    "DamonError",
    "DamonMissingError",
    "DamonPermissionError",
    "DamonReadbackError",
    "DamonUnsupportedError",
]


class DamonMissingError(DamonError):
    """The kernel has no usable DAMON interface (or it is not mounted)."""


class DamonPermissionError(DamonError):
    """Writing a DAMON file failed with EACCES or EPERM (not root, lockdown, ...)."""


class DamonReadbackError(DamonError):
    """A value read back after writing differs from what was written."""


class DamonUnsupportedError(DamonError):
    """The request needs a DAMON feature this kernel does not have."""
