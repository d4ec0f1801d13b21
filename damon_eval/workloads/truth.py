"""The ground truth ``accgen`` writes: which address ranges it accessed, and when.

Times are guest CLOCK_MONOTONIC seconds, the clock of the DAMON trace when the
tracefs instance uses ``trace_clock=mono``, so a record's snapshots and the
truth's phases line up without conversion.  docs/agent.md describes the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from damon_eval.errors import DamonEvalError

TRUTH_FORMAT = "damon-eval-ground-truth"
TRUTH_VERSION = 1


class GroundTruthError(DamonEvalError):
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


def parse_ground_truth(data: dict) -> GroundTruth:
    if data.get("format") != TRUTH_FORMAT or data.get("version") != TRUTH_VERSION:
        raise GroundTruthError(
            f"not a {TRUTH_FORMAT} version {TRUTH_VERSION} file "
            f"(format={data.get('format')!r}, version={data.get('version')!r})"
        )
    try:
        regions = tuple(
            TruthRegion(str(r["name"]), int(r["start"]), int(r["end"])) for r in data["regions"]
        )
        phases = tuple(
            TruthPhase(
                name=str(p["name"]),
                start_s=float(p["start_s"]),
                end_s=float(p["end_s"]),
                nr_accesses=int(p.get("nr_accesses", 0)),
                accessed=tuple(
                    TruthAccess(
                        region=str(a["region"]),
                        start=int(a["start"]),
                        end=int(a["end"]),
                        weight=int(a["weight"]),
                        pattern=str(a["pattern"]),
                        rw=str(a["rw"]),
                        stride=int(a.get("stride", 0)),
                    )
                    for a in p["accessed"]
                ),
            )
            for p in data["phases"]
        )
        return GroundTruth(
            pid=int(data["pid"]),
            clock=str(data["clock"]),
            regions=regions,
            phases=phases,
            scale=float(data.get("scale", 1.0)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise GroundTruthError(f"malformed ground truth: {exc!r}") from exc


def load_ground_truth(path: Path) -> GroundTruth:
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise GroundTruthError(f"cannot read ground truth {path}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise GroundTruthError(f"ground truth {path} is not JSON: {exc}") from exc
    return parse_ground_truth(data)
