"""One read-only batch that learns what a DAMON start needs to know about a machine.

On a guest every :meth:`~damon_eval.fs.FileSystem.execute` is one SSH round
trip (~0.3-0.5 s under TCG), so the controller does not ask one question per
batch.  A :class:`TargetProbe` reads, in a single batch and without writing
anything:

* which DAMON interface exists and the state of its kdamonds (each back end
  contributes its :meth:`~damon_eval.damon.backend.DamonBackend.probe_ops`;
  sysfs reads ``nr_kdamonds`` and, speculatively, the first kdamonds' states),
* the boot id and kernel release,
* where tracefs is mounted and which ``damon:*`` tracepoints it has,
* any other files the caller names (``/proc/iomem`` for a paddr target).

The ``...IfExists`` operations make the batch independent of what exists.  A
probe describes the machine at one moment: a start uses it only while it is
fresh (:data:`MAX_PROBE_AGE_S`) and from the same file system, and the kernel
still refuses ``nr_kdamonds`` writes (EBUSY) when a kdamond started meanwhile.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from damon_eval.damon.errors import translate_fs_error
from damon_eval.damon.tracing import (
    TRACEFS_CANDIDATES,
    tracefs_from_results,
    tracefs_probe_ops,
    tracepoints_from_results,
)
from damon_eval.errors import FsError
from damon_eval.fs import FileSystem, Op, ReadIfExists

BOOT_ID_PATH = "/proc/sys/kernel/random/boot_id"
OSRELEASE_PATH = "/proc/sys/kernel/osrelease"
MAX_PROBE_AGE_S = 30.0
"""A probe older than this is not used to decide that DAMON is idle; a new one is taken."""

_ABSENT = object()


@dataclass(frozen=True, slots=True)
class TargetProbe:
    """The results of one probe batch, looked up by the operation that produced them."""

    fs: FileSystem = field(repr=False, compare=False)
    taken_at: float
    results: dict[Op, Any]
    reads: tuple[str, ...]
    tracefs_candidates: tuple[str, ...]

    def has(self, op: Op) -> bool:
        return op in self.results

    def get(self, op: Op, default: Any = None) -> Any:
        """The result of ``op``, or ``default`` when the probe did not include it."""
        return self.results.get(op, default)

    @property
    def age_s(self) -> float:
        return time.monotonic() - self.taken_at

    def usable_for(self, fs: FileSystem) -> bool:
        """Whether a start on ``fs`` may rely on this probe (same file system, fresh)."""
        return self.fs is fs and self.age_s <= MAX_PROBE_AGE_S

    @property
    def boot_id(self) -> str:
        """The boot id, empty when the machine has none (a fake tree)."""
        return (self.results.get(ReadIfExists(BOOT_ID_PATH)) or "").strip()

    @property
    def kernel_release(self) -> str | None:
        text = self.results.get(ReadIfExists(OSRELEASE_PATH))
        return text.strip() if text is not None else None

    @property
    def tracefs(self) -> str | None:
        """The first mounted tracefs among the candidates, or None."""
        return tracefs_from_results(self.results, self.tracefs_candidates)

    @property
    def tracepoints(self) -> tuple[str, ...]:
        """Names of the ``damon:*`` tracepoints of :attr:`tracefs` (empty if none)."""
        return tracepoints_from_results(self.results, self.tracefs)

    def file(self, path: str) -> str | None:
        """A file the caller asked for with ``reads``: its text, or None if it does not exist."""
        value = self.results.get(ReadIfExists(path), _ABSENT)
        if path not in self.reads and value is _ABSENT:
            raise ValueError(f"{path} was not read by this probe (reads: {list(self.reads)})")
        return None if value is _ABSENT else value


def take_probe(
    fs: FileSystem,
    ops: Sequence[Op],
    *,
    reads: Iterable[str] = (),
    tracefs_candidates: Iterable[str] = TRACEFS_CANDIDATES,
) -> TargetProbe:
    """Run ``ops`` plus boot id, release, tracefs and ``reads`` as one batch (a failure
    is a :class:`~damon_eval.damon.errors.DamonError`)."""
    reads = tuple(reads)
    candidates = tuple(tracefs_candidates)
    batch: list[Op] = list(
        dict.fromkeys(
            [
                *ops,
                ReadIfExists(BOOT_ID_PATH),
                ReadIfExists(OSRELEASE_PATH),
                *tracefs_probe_ops(candidates),
                *(ReadIfExists(p) for p in reads),
            ]
        )
    )
    taken_at = time.monotonic()  # before the batch: the age is never underestimated
    try:
        values = fs.execute(batch)
    except FsError as exc:
        raise translate_fs_error(exc, f"probing DAMON on {fs.description}") from exc
    return TargetProbe(
        fs=fs,
        taken_at=taken_at,
        results=dict(zip(batch, values, strict=True)),
        reads=reads,
        tracefs_candidates=candidates,
    )
