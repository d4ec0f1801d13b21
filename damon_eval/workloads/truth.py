"""The ground truth ``accgen`` writes: which address ranges it accessed, and when.

Times are guest CLOCK_MONOTONIC seconds, the clock of the DAMON trace when the
tracefs instance uses ``trace_clock=mono``, so a record's snapshots and the
truth's phases line up without conversion.  docs/agent.md describes the file.
This is the one reader of it; ``report accuracy`` uses it too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from damon_eval.errors import ConfigError

# The file a synthetic workload writes its ground truth to, next to its result.
TRUTH_FILE_NAME = "truth.json"
TRUTH_FORMAT = "damon-eval-ground-truth"
TRUTH_VERSION = 1
FORMAT_KEYS = ("format", "version")
SCHEMA_NAME = "ground_truth"  # damon_eval/data/schemas/ground_truth.schema.json


class GroundTruthError(ConfigError):
    """A ground-truth file is missing, of another format, or malformed."""


@dataclass(frozen=True, slots=True)
class TruthRegion:
    name: str
    start: int
    end: int

    @property
    def size(self) -> int:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class TruthAccess:
    """One region accessed in a phase (weight > 0, or a one-pass ``once`` phase)."""

    region: str
    start: int
    end: int
    weight: int
    pattern: str  # "sequential", "random" or "once"
    rw: str  # "ro", "wo" or "rw"
    stride: int


@dataclass(frozen=True, slots=True)
class TruthPhase:
    name: str
    start_s: float
    end_s: float
    nr_accesses: int
    accessed: tuple[TruthAccess, ...]

    @property
    def working_set_bytes(self) -> int:
        """Bytes of the regions accessed in this phase (the true WSS)."""
        return sum(a.end - a.start for a in self.accessed)


@dataclass(frozen=True, slots=True)
class GroundTruth:
    pid: int
    clock: str
    regions: tuple[TruthRegion, ...]
    phases: tuple[TruthPhase, ...]
    scale: float

    def phase_at(self, mono_s: float) -> TruthPhase | None:
        """The phase running at a CLOCK_MONOTONIC time, if any."""
        for phase in self.phases:
            if phase.start_s <= mono_s < phase.end_s:
                return phase
        return None


def parse_ground_truth(data: Any, source: str = "<dict>") -> GroundTruth:
    """Validate a ground-truth document (schema, then regions and phases) and read it.

    An accessed ``start``/``end`` inside its region is an absolute address,
    otherwise an offset from the region's start; the result holds absolute
    addresses.  A file with no phase yet is valid: accgen writes one at start.
    """
    # Lazy: reading a record must not load jsonschema and PyYAML (test_cli_imports).
    from damon_eval.schema import validate

    where = f"ground truth {source}"
    if not isinstance(data, dict) or (data.get("format"), data.get("version")) != (
        TRUTH_FORMAT,
        TRUTH_VERSION,
    ):
        found = data if not isinstance(data, dict) else {k: data.get(k) for k in FORMAT_KEYS}
        raise GroundTruthError(
            f"{where}: not a {TRUTH_FORMAT} version {TRUTH_VERSION} file (found {found!r})"
        )
    validate(data, SCHEMA_NAME, where, error=GroundTruthError, fill_defaults=False)
    regions: dict[str, TruthRegion] = {}
    for r in data["regions"]:
        if r["name"] in regions:
            raise GroundTruthError(f"{where}: region {r['name']!r} is defined twice")
        if r["end"] <= r["start"]:
            raise GroundTruthError(f"{where}: region {r['name']!r} has end <= start")
        regions[r["name"]] = TruthRegion(r["name"], r["start"], r["end"])
    phases = tuple(_parse_phase(p, regions, where) for p in data["phases"])
    return GroundTruth(
        pid=data["pid"],
        clock=data["clock"],
        regions=tuple(regions.values()),
        phases=phases,
        scale=float(data.get("scale", 1.0)),
    )


def _parse_phase(phase: dict, regions: dict[str, TruthRegion], where: str) -> TruthPhase:
    if phase["end_s"] <= phase["start_s"]:
        raise GroundTruthError(f"{where}: phase {phase['name']!r} has end_s <= start_s")
    accessed = []
    for a in phase["accessed"]:
        region = regions.get(a["region"])
        if region is None:
            raise GroundTruthError(
                f"{where}: phase {phase['name']!r} accesses unknown region {a['region']!r} "
                f"(valid: {', '.join(regions)})"
            )
        start, end = a["start"], a["end"]
        if not region.start <= start < end <= region.end:
            if 0 <= start < end <= region.size:
                start, end = region.start + start, region.start + end
            else:
                raise GroundTruthError(
                    f"{where}: phase {phase['name']!r}: accessed range [{a['start']}, "
                    f"{a['end']}) lies outside region {region.name!r} [{region.start}, "
                    f"{region.end}) (as absolute addresses or as offsets)"
                )
        accessed.append(
            TruthAccess(
                region=region.name,
                start=start,
                end=end,
                weight=int(a["weight"]),
                pattern=a["pattern"],
                rw=a["rw"],
                stride=int(a.get("stride", 0)),
            )
        )
    return TruthPhase(
        name=phase["name"],
        start_s=float(phase["start_s"]),
        end_s=float(phase["end_s"]),
        nr_accesses=int(phase.get("nr_accesses", 0)),
        accessed=tuple(accessed),
    )


def load_ground_truth(path: Path | str) -> GroundTruth:
    """Read and validate the ground truth accgen wrote."""
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise GroundTruthError(f"ground truth {path}: cannot read ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise GroundTruthError(
            f"ground truth {path}: line {exc.lineno} column {exc.colno}: not JSON ({exc.msg})"
        ) from None
    return parse_ground_truth(data, str(path))
