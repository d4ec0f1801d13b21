"""DAMON control: typed model, scheme language, sysfs/debugfs back ends, controller, tracefs.

Typical use::

    from damon_eval.damon import DamonController, build_kdamond, load_schemes
    from damon_eval.damon.model import MonitoringAttrs, Target

    kdamond, schemes = build_kdamond(
        "vaddr", [Target(pid)], attrs=MonitoringAttrs(), schemes=load_schemes(path)
    )
    with DamonController(fs).session(kdamond, schemes=schemes) as session:
        ...  # session.scheme_stats(), session.tried_regions()
"""

from damon_eval.damon.backend import (
    DamonBackend,
    DebugfsRecord,
    Features,
    KdamondHandle,
    KdamondStatus,
    SchemeStats,
    TriedRegion,
    TriedRegions,
)
from damon_eval.damon.controller import (
    DamonController,
    DamonSession,
    OwnershipRegistry,
    SessionInterrupted,
    build_kdamond,
)
from damon_eval.damon.detect import open_backend
from damon_eval.damon.errors import (
    DamonBusyError,
    DamonError,
    DamonMissingError,
    DamonPermissionError,
    DamonReadbackError,
    DamonUnsupportedError,
)
from damon_eval.damon.model import (
    AccessPattern,
    Context,
    Filter,
    Kdamond,
    MonitoringAttrs,
    Quotas,
    Region,
    Scheme,
    Target,
    Watermarks,
)
from damon_eval.damon.scheme_spec import SchemeSpec
from damon_eval.damon.schemes import (
    ResolvedScheme,
    load_schemes,
    parse_schemes,
    resolve_schemes,
    schemes_from_argument,
)

__all__ = [
    "AccessPattern",
    "Context",
    "DamonBackend",
    "DamonBusyError",
    "DamonController",
    "DamonError",
    "DamonMissingError",
    "DamonPermissionError",
    "DamonReadbackError",
    "DamonSession",
    "DamonUnsupportedError",
    "DebugfsRecord",
    "Features",
    "Filter",
    "Kdamond",
    "KdamondHandle",
    "KdamondStatus",
    "MonitoringAttrs",
    "OwnershipRegistry",
    "Quotas",
    "Region",
    "ResolvedScheme",
    "Scheme",
    "SchemeSpec",
    "SchemeStats",
    "SessionInterrupted",
    "Target",
    "TriedRegion",
    "TriedRegions",
    "Watermarks",
    "build_kdamond",
    "load_schemes",
    "open_backend",
    "parse_schemes",
    "resolve_schemes",
    "schemes_from_argument",
]
