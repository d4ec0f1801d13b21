"""Errors of the analysis layer (all :class:`~damon_eval.errors.DamonEvalError`)."""

from __future__ import annotations

from damon_eval.errors import ConfigError, DamonEvalError


class ResultFileError(DamonEvalError):
    """A ``result.json`` is unreadable, invalid, or lives in the wrong directory."""


class RunTableError(DamonEvalError):
    """A ``runs.csv`` is unreadable, malformed, or lacks what was asked for."""


class UnknownMetricError(ConfigError):
    """A metric name that ``damon_eval/metrics.py`` does not define."""


class UnknownConfigError(ConfigError):
    """A configuration name that the run table does not contain."""


class DamonTestsImportError(DamonEvalError):
    """A damon-tests results tree, or one of its raw files, that cannot be read."""
