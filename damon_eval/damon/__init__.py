"""DAMON control: typed model, scheme language, sysfs/debugfs back ends, controller, tracefs.

Typical use::

    from damon_eval.damon import DamonController, build_kdamond, load_schemes
    from damon_eval.damon.model import MonitoringAttrs, Target

    kdamond, schemes = build_kdamond(
        "vaddr", [Target(pid)], attrs=MonitoringAttrs(), schemes=load_schemes(path)
    )
    with DamonController(fs).session(kdamond, schemes=schemes) as session:
        ...  # session.scheme_stats(), session.tried_regions()

The names below are imported on first use (PEP 562), so importing one submodule
(``damon_eval.damon.units`` for the record readers) does not load the controller
and both back ends.
"""

from __future__ import annotations

import importlib

# name -> submodule that defines it
_EXPORTS = {
    "AccessPattern": "model",
    "Context": "model",
    "DamonBackend": "backend",
    "DamonBusyError": "errors",
    "DamonController": "controller",
    "DamonError": "errors",
    "DamonMissingError": "errors",
    "DamonPermissionError": "errors",
    "DamonReadbackError": "errors",
    "DamonSession": "controller",
    "DamonUnsupportedError": "errors",
    "DebugfsRecord": "backend",
    "Features": "backend",
    "Filter": "model",
    "Kdamond": "model",
    "KdamondHandle": "backend",
    "KdamondStatus": "backend",
    "MonitoringAttrs": "model",
    "OwnershipRegistry": "controller",
    "Quotas": "model",
    "Region": "model",
    "ResolvedScheme": "schemes",
    "Scheme": "model",
    "SchemeSpec": "scheme_spec",
    "SchemeStats": "backend",
    "SessionInterrupted": "controller",
    "Target": "model",
    "TriedRegion": "backend",
    "TriedRegions": "backend",
    "Watermarks": "model",
    "build_kdamond": "controller",
    "load_schemes": "schemes",
    "open_backend": "detect",
    "parse_schemes": "schemes",
    "resolve_schemes": "schemes",
    "schemes_from_argument": "schemes",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    try:
        module = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
