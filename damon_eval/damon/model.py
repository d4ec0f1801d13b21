"""Typed DAMON parameters mirroring the mainline sysfs tree.

::

    Kdamond                      kdamonds/<N>/
      Context                      contexts/<N>/  operations
        MonitoringAttrs              monitoring_attrs/{intervals,nr_regions}/
        Target                       targets/<N>/pid_target
          Region                       regions/<N>/{start,end}
        Scheme                       schemes/<N>/action, apply_interval_us
          AccessPattern                access_pattern/{sz,nr_accesses,age}/{min,max}
          Quotas                       quotas/{ms,bytes,reset_interval_ms,weights/*}
          Watermarks                   watermarks/{metric,interval_us,high,mid,low}
          Filter                       filters/<N>/{type,matching,allow,...}

Values are the kernel's *raw* units: bytes, samples per aggregation interval,
aggregation intervals, microseconds, permil.  The human scheme form lives in
:mod:`damon_eval.damon.schemes`.  Every class validates itself on construction
(raising :class:`~damon_eval.errors.ConfigError`) and round-trips through
``to_dict``/``from_dict`` (plain JSON types, dataclass field names as keys).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from damon_eval.errors import ConfigError

ULONG_MAX = 2**64 - 1
"""``unsigned long`` maximum on 64-bit kernels: the 'max' of sizes."""
UINT_MAX = 2**32 - 1
"""``unsigned int`` maximum: the 'max' of ages (the kernel keeps ages as unsigned int)."""

OPERATIONS = ("vaddr", "fvaddr", "paddr")
ACTIONS = (
    "willneed",
    "cold",
    "pageout",
    "hugepage",
    "nohugepage",
    "lru_prio",
    "lru_deprio",
    "stat",
)
WATERMARK_METRICS = ("none", "free_mem_rate")
FILTER_TYPES = ("anon", "active", "memcg", "young", "unmapped", "addr", "target")
CORE_FILTER_TYPES = ("addr", "target")
"""Filter types the DAMON core handles; the others are handled by the operations set."""


def _check_int(owner: str, name: str, value: Any, lo: int = 0, hi: int = ULONG_MAX) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{owner}.{name} must be an integer, not {value!r}")
    if not lo <= value <= hi:
        raise ConfigError(f"{owner}.{name}={value} is out of range; valid: {lo}..{hi}")


def _check_choice(owner: str, name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{owner}.{name}={value!r} is not valid; valid: {', '.join(choices)}")


def _fields(owner: str, data: Any, allowed: tuple[str, ...]) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{owner} must be a mapping, not {type(data).__name__}")
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise ConfigError(f"{owner}: unknown key(s) {unknown}; valid: {', '.join(allowed)}")
    return data


def _list(owner: str, name: str, value: Any) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise ConfigError(f"{owner}.{name} must be a list, not {type(value).__name__}")
    return list(value)


@dataclass(frozen=True, slots=True)
class MonitoringAttrs:
    """Intervals (µs) and the region-count bounds; defaults are the seed document's."""

    sample_us: int = 5000
    aggr_us: int = 100000
    update_us: int = 1000000
    min_nr_regions: int = 10
    max_nr_regions: int = 1000

    def __post_init__(self) -> None:
        for name in ("sample_us", "aggr_us", "update_us"):
            _check_int("MonitoringAttrs", name, getattr(self, name), lo=1)
        _check_int("MonitoringAttrs", "min_nr_regions", self.min_nr_regions, lo=3)
        _check_int("MonitoringAttrs", "max_nr_regions", self.max_nr_regions, lo=3)
        # The same rules the kernel's damon_set_attrs() applies.
        if self.sample_us > self.aggr_us:
            raise ConfigError(
                f"MonitoringAttrs: sample_us={self.sample_us} must be <= aggr_us={self.aggr_us}"
            )
        if self.min_nr_regions > self.max_nr_regions:
            raise ConfigError(
                f"MonitoringAttrs: min_nr_regions={self.min_nr_regions} must be <= "
                f"max_nr_regions={self.max_nr_regions}"
            )

    @property
    def max_nr_accesses(self) -> int:
        """The most samples a region can be found accessed in one aggregation interval."""
        return self.aggr_us // self.sample_us

    def to_dict(self) -> dict[str, Any]:
        return {
            "sample_us": self.sample_us,
            "aggr_us": self.aggr_us,
            "update_us": self.update_us,
            "min_nr_regions": self.min_nr_regions,
            "max_nr_regions": self.max_nr_regions,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MonitoringAttrs:
        return cls(**_fields("MonitoringAttrs", data, _ATTRS_FIELDS))


_ATTRS_FIELDS = ("sample_us", "aggr_us", "update_us", "min_nr_regions", "max_nr_regions")


@dataclass(frozen=True, slots=True)
class Region:
    """An address range ``[start, end)``."""

    start: int
    end: int

    def __post_init__(self) -> None:
        _check_int("Region", "start", self.start)
        _check_int("Region", "end", self.end)
        if self.start >= self.end:
            raise ConfigError(f"Region: start={self.start} must be < end={self.end}")

    @property
    def size(self) -> int:
        return self.end - self.start

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Region:
        return cls(**_fields("Region", data, ("start", "end")))


@dataclass(frozen=True, slots=True)
class Target:
    """A monitoring target: a process (vaddr, fvaddr) or ``pid=None`` (paddr)."""

    pid: int | None = None
    regions: tuple[Region, ...] = ()

    def __post_init__(self) -> None:
        if self.pid is not None:
            _check_int("Target", "pid", self.pid, lo=1, hi=2**31 - 1)
        if not isinstance(self.regions, tuple):
            object.__setattr__(self, "regions", tuple(self.regions))
        for earlier, later in zip(self.regions, self.regions[1:], strict=False):
            if later.start < earlier.end:
                raise ConfigError(
                    f"Target: regions must be sorted and must not overlap: "
                    f"[{earlier.start}, {earlier.end}) then [{later.start}, {later.end})"
                )

    def to_dict(self) -> dict[str, Any]:
        return {"pid": self.pid, "regions": [r.to_dict() for r in self.regions]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Target:
        data = _fields("Target", data, ("pid", "regions"))
        regions = _list("Target", "regions", data.get("regions", []))
        return cls(pid=data.get("pid"), regions=tuple(Region.from_dict(r) for r in regions))


@dataclass(frozen=True, slots=True)
class AccessPattern:
    """Raw bounds: sizes in bytes, ``nr_accesses`` in samples, ages in aggregation intervals."""

    sz_min: int = 0
    sz_max: int = ULONG_MAX
    nr_accesses_min: int = 0
    nr_accesses_max: int = UINT_MAX
    age_min: int = 0
    age_max: int = UINT_MAX

    def __post_init__(self) -> None:
        for name in ("sz_min", "sz_max"):
            _check_int("AccessPattern", name, getattr(self, name))
        for name in ("nr_accesses_min", "nr_accesses_max", "age_min", "age_max"):
            _check_int("AccessPattern", name, getattr(self, name), hi=UINT_MAX)
        for what in ("sz", "nr_accesses", "age"):
            low, high = getattr(self, f"{what}_min"), getattr(self, f"{what}_max")
            if low > high:
                raise ConfigError(f"AccessPattern: {what}_min={low} must be <= {what}_max={high}")

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _ACCESS_PATTERN_FIELDS}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AccessPattern:
        return cls(**_fields("AccessPattern", data, _ACCESS_PATTERN_FIELDS))


_ACCESS_PATTERN_FIELDS = (
    "sz_min",
    "sz_max",
    "nr_accesses_min",
    "nr_accesses_max",
    "age_min",
    "age_max",
)


@dataclass(frozen=True, slots=True)
class Quotas:
    """Time (``ms``) and size (``bytes``) quotas per ``reset_interval_ms``; 0 means none."""

    ms: int = 0
    bytes: int = 0
    reset_interval_ms: int = 0
    weight_sz_permil: int = 0
    weight_nr_accesses_permil: int = 0
    weight_age_permil: int = 0

    def __post_init__(self) -> None:
        for name in _QUOTA_FIELDS:
            _check_int("Quotas", name, getattr(self, name))

    @property
    def active(self) -> bool:
        return bool(self.ms or self.bytes)

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _QUOTA_FIELDS}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Quotas:
        return cls(**_fields("Quotas", data, _QUOTA_FIELDS))


_QUOTA_FIELDS = (
    "ms",
    "bytes",
    "reset_interval_ms",
    "weight_sz_permil",
    "weight_nr_accesses_permil",
    "weight_age_permil",
)


@dataclass(frozen=True, slots=True)
class Watermarks:
    """Activation watermarks; ``metric='none'`` keeps the scheme always active."""

    metric: str = "none"
    interval_us: int = 0
    high: int = 0
    mid: int = 0
    low: int = 0

    def __post_init__(self) -> None:
        _check_choice("Watermarks", "metric", self.metric, WATERMARK_METRICS)
        _check_int("Watermarks", "interval_us", self.interval_us)
        for name in ("high", "mid", "low"):
            _check_int("Watermarks", name, getattr(self, name), hi=1000)
        if self.metric != "none" and not self.high >= self.mid >= self.low:
            raise ConfigError(
                f"Watermarks: need high >= mid >= low, got {self.high}, {self.mid}, {self.low}"
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "interval_us": self.interval_us,
            "high": self.high,
            "mid": self.mid,
            "low": self.low,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Watermarks:
        return cls(**_fields("Watermarks", data, ("metric", "interval_us", "high", "mid", "low")))


@dataclass(frozen=True, slots=True)
class Filter:
    """A DAMOS filter.  ``allow=False`` rejects matching memory (the kernel's default)."""

    type: str
    matching: bool = True
    allow: bool = False
    memcg_path: str = ""
    addr_start: int = 0
    addr_end: int = 0
    target_idx: int = 0

    def __post_init__(self) -> None:
        _check_choice("Filter", "type", self.type, FILTER_TYPES)
        for name in ("matching", "allow"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"Filter.{name} must be true or false")
        _check_int("Filter", "addr_start", self.addr_start)
        _check_int("Filter", "addr_end", self.addr_end)
        _check_int("Filter", "target_idx", self.target_idx)
        if self.type == "memcg" and not self.memcg_path:
            raise ConfigError("Filter: type 'memcg' needs memcg_path")
        if self.type == "addr" and self.addr_start >= self.addr_end:
            raise ConfigError(
                f"Filter: type 'addr' needs addr_start < addr_end, got "
                f"{self.addr_start}, {self.addr_end}"
            )

    @property
    def handled_by_core(self) -> bool:
        return self.type in CORE_FILTER_TYPES

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _FILTER_FIELDS}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Filter:
        return cls(**_fields("Filter", data, _FILTER_FIELDS))


_FILTER_FIELDS = (
    "type",
    "matching",
    "allow",
    "memcg_path",
    "addr_start",
    "addr_end",
    "target_idx",
)


@dataclass(frozen=True, slots=True)
class Scheme:
    """One DAMOS scheme in raw form."""

    action: str
    access_pattern: AccessPattern = field(default_factory=AccessPattern)
    quotas: Quotas = field(default_factory=Quotas)
    watermarks: Watermarks = field(default_factory=Watermarks)
    filters: tuple[Filter, ...] = ()
    apply_interval_us: int = 0

    def __post_init__(self) -> None:
        _check_choice("Scheme", "action", self.action, ACTIONS)
        if not isinstance(self.filters, tuple):
            object.__setattr__(self, "filters", tuple(self.filters))
        _check_int("Scheme", "apply_interval_us", self.apply_interval_us)

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "access_pattern": self.access_pattern.to_dict(),
            "quotas": self.quotas.to_dict(),
            "watermarks": self.watermarks.to_dict(),
            "filters": [f.to_dict() for f in self.filters],
            "apply_interval_us": self.apply_interval_us,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Scheme:
        data = _fields(
            "Scheme",
            data,
            ("action", "access_pattern", "quotas", "watermarks", "filters", "apply_interval_us"),
        )
        if "action" not in data:
            raise ConfigError(f"Scheme needs an action; valid: {', '.join(ACTIONS)}")
        return cls(
            action=data["action"],
            access_pattern=AccessPattern.from_dict(data.get("access_pattern", {})),
            quotas=Quotas.from_dict(data.get("quotas", {})),
            watermarks=Watermarks.from_dict(data.get("watermarks", {})),
            filters=tuple(
                Filter.from_dict(f) for f in _list("Scheme", "filters", data.get("filters", []))
            ),
            apply_interval_us=data.get("apply_interval_us", 0),
        )


@dataclass(frozen=True, slots=True)
class Context:
    """A monitoring context: operations set, attributes, targets and schemes."""

    operations: str
    attrs: MonitoringAttrs = field(default_factory=MonitoringAttrs)
    targets: tuple[Target, ...] = ()
    schemes: tuple[Scheme, ...] = ()

    def __post_init__(self) -> None:
        _check_choice("Context", "operations", self.operations, OPERATIONS)
        for name in ("targets", "schemes"):
            if not isinstance(getattr(self, name), tuple):
                object.__setattr__(self, name, tuple(getattr(self, name)))
        for index, target in enumerate(self.targets):
            if self.operations in ("vaddr", "fvaddr") and target.pid is None:
                raise ConfigError(f"Context: {self.operations} target {index} needs a pid")
            if self.operations == "paddr" and target.pid is not None:
                raise ConfigError(
                    f"Context: paddr target {index} must not have a pid (got {target.pid})"
                )
            if self.operations in ("fvaddr", "paddr") and not target.regions:
                raise ConfigError(
                    f"Context: {self.operations} target {index} needs regions "
                    "(paddr: see damon_eval.damon.iomem.system_ram_target)"
                )

    def to_dict(self) -> dict[str, Any]:
        return {
            "operations": self.operations,
            "attrs": self.attrs.to_dict(),
            "targets": [t.to_dict() for t in self.targets],
            "schemes": [s.to_dict() for s in self.schemes],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Context:
        data = _fields("Context", data, ("operations", "attrs", "targets", "schemes"))
        if "operations" not in data:
            raise ConfigError(f"Context needs operations; valid: {', '.join(OPERATIONS)}")
        return cls(
            operations=data["operations"],
            attrs=MonitoringAttrs.from_dict(data.get("attrs", {})),
            targets=tuple(
                Target.from_dict(t) for t in _list("Context", "targets", data.get("targets", []))
            ),
            schemes=tuple(
                Scheme.from_dict(s) for s in _list("Context", "schemes", data.get("schemes", []))
            ),
        )


@dataclass(frozen=True, slots=True)
class Kdamond:
    """A DAMON worker thread's configuration: exactly one context (the kernel's limit)."""

    contexts: tuple[Context, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.contexts, tuple):
            object.__setattr__(self, "contexts", tuple(self.contexts))
        if len(self.contexts) != 1:
            raise ConfigError(
                f"Kdamond: exactly one context is supported (the kernel allows 0 or 1), "
                f"got {len(self.contexts)}"
            )

    @property
    def context(self) -> Context:
        return self.contexts[0]

    def to_dict(self) -> dict[str, Any]:
        return {"contexts": [c.to_dict() for c in self.contexts]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Kdamond:
        data = _fields("Kdamond", data, ("contexts",))
        return cls(
            contexts=tuple(
                Context.from_dict(c) for c in _list("Kdamond", "contexts", data.get("contexts", []))
            )
        )
