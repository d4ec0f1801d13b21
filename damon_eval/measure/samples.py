"""What ``de-agent`` leaves in its output directory, parsed, and the run metrics.

Files (docs/agent.md describes them): ``samples.csv`` (one row per interval),
``runtime`` (seconds, one number), ``status`` (``key=value`` lines),
``target.pid``, ``events.log``, ``workload.log`` and, for rec/prec, the raw
trace record.

:func:`compute_metrics` turns samples and the runtime into the metrics of
:mod:`damon_eval.metrics`; docs/metrics.md explains each definition.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from fractions import Fraction
from pathlib import Path

from damon_eval.errors import DamonEvalError
from damon_eval.metrics import METRICS


class AgentOutputError(DamonEvalError):
    """An agent output file is missing or malformed."""


# The fixed columns of samples.csv, in order; per-scheme columns follow them.
BASE_COLUMNS: tuple[str, ...] = (
    "t_s",
    "memfree_kib",
    "memtotal_kib",
    "anon_huge_kib",
    "pswpin",
    "pswpout",
    "pgmajfault",
    "rss_tree_kib",
    "nr_procs",
    "kdamond_pid",
    "kdamond_cpu_ticks",
    "clk_tck",
    "damos_nr_tried",
    "damos_sz_tried",
    "damos_nr_applied",
    "damos_sz_applied",
    "damos_qt_exceeds",
    "agent_rss_kib",
)
DAMOS_STATS: tuple[str, ...] = ("nr_tried", "sz_tried", "nr_applied", "sz_applied", "qt_exceeds")
AGENT_STATUSES: tuple[str, ...] = ("ok", "failed", "killed", "timeout", "aborted", "error")


@dataclass(frozen=True, slots=True)
class DamosStats:
    nr_tried: int
    sz_tried: int
    nr_applied: int
    sz_applied: int
    qt_exceeds: int


@dataclass(frozen=True, slots=True)
class Sample:
    """One row of samples.csv.  ``None``: not available (no kdamond, no schemes)."""

    t_s: float
    memfree_kib: int
    memtotal_kib: int
    anon_huge_kib: int
    pswpin: int
    pswpout: int
    pgmajfault: int
    rss_tree_kib: int
    nr_procs: int
    kdamond_pid: int | None
    kdamond_cpu_ticks: int | None
    clk_tck: int
    damos: DamosStats | None
    agent_rss_kib: int
    schemes: tuple[DamosStats, ...] = ()


@dataclass(frozen=True, slots=True)
class SampleTable:
    """All samples of a run, plus the raw columns and rows as the agent wrote them."""

    columns: tuple[str, ...]
    rows: tuple[tuple[float | int | None, ...], ...]
    samples: tuple[Sample, ...]

    def to_json(self, interval_s: float) -> dict:
        """The ``samples`` object of result.json."""
        return {"interval_s": interval_s, "columns": list(self.columns), "rows": self.rows}


@dataclass(frozen=True, slots=True)
class AgentStatus:
    """The agent's ``status`` file."""

    status: str
    runtime_s: float
    target_pid: int
    command_pid: int
    release_mono_s: float
    end_mono_s: float
    nr_samples: int
    record_bytes: int
    agent_version: str
    exit_code: int | None = None
    signal: int | None = None
    command_exit_code: int | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass(frozen=True, slots=True)
class AgentOutput:
    """Everything one agent run left behind."""

    status: AgentStatus
    runtime_s: float | None
    samples: SampleTable


def _number(text: str, column: str, line_no: int) -> float | int | None:
    if text == "":
        return None
    try:
        return float(text) if column == "t_s" else int(text)
    except ValueError as exc:
        raise AgentOutputError(
            f"samples.csv line {line_no}: column {column} has {text!r}, not a number"
        ) from exc


def parse_samples_csv(text: str) -> SampleTable:
    """Parse samples.csv; the header must start with :data:`BASE_COLUMNS`."""
    reader = csv.reader(io.StringIO(text))
    try:
        header = tuple(next(reader))
    except StopIteration:
        raise AgentOutputError("samples.csv is empty (no header)") from None
    if header[: len(BASE_COLUMNS)] != BASE_COLUMNS:
        raise AgentOutputError(
            f"samples.csv header {','.join(header)!r} does not start with the expected "
            f"columns {','.join(BASE_COLUMNS)}"
        )
    scheme_columns = header[len(BASE_COLUMNS) :]
    if len(scheme_columns) % len(DAMOS_STATS):
        raise AgentOutputError(f"samples.csv has incomplete per-scheme columns: {scheme_columns}")
    nr_schemes = len(scheme_columns) // len(DAMOS_STATS)
    rows: list[tuple[float | int | None, ...]] = []
    samples: list[Sample] = []
    for line_no, raw in enumerate(reader, start=2):
        if not raw:
            continue
        if len(raw) != len(header):
            # a row cut short by a crash is the last one; anything else is corruption
            raise AgentOutputError(
                f"samples.csv line {line_no} has {len(raw)} fields, the header {len(header)}"
            )
        row = tuple(_number(v, c, line_no) for v, c in zip(raw, header, strict=True))
        rows.append(row)
        values = dict(zip(header, row, strict=True))
        damos_values = [values[f"damos_{name}"] for name in DAMOS_STATS]
        damos = None if None in damos_values else DamosStats(*damos_values)  # type: ignore[arg-type]
        schemes = tuple(
            DamosStats(*(values[f"s{i}_{name}"] for name in DAMOS_STATS))  # type: ignore[arg-type]
            for i in range(nr_schemes)
        )
        required = {
            f.name: values[f.name]
            for f in fields(Sample)
            if f.name not in ("damos", "schemes", "kdamond_pid", "kdamond_cpu_ticks")
        }
        missing = [name for name, value in required.items() if value is None]
        if missing:
            raise AgentOutputError(f"samples.csv line {line_no}: no value for {missing}")
        samples.append(
            Sample(
                **required,  # type: ignore[arg-type]
                kdamond_pid=values["kdamond_pid"],  # type: ignore[arg-type]
                kdamond_cpu_ticks=values["kdamond_cpu_ticks"],  # type: ignore[arg-type]
                damos=damos,
                schemes=schemes,
            )
        )
    return SampleTable(header, tuple(rows), tuple(samples))


def parse_status(text: str) -> AgentStatus:
    values: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise AgentOutputError(f"status line {line!r} is not key=value")
        values[key.strip()] = value.strip()
    status = values.get("status")
    if status not in AGENT_STATUSES:
        raise AgentOutputError(
            f"status file has status={status!r}; valid: {', '.join(AGENT_STATUSES)}"
        )

    def optional_int(key: str) -> int | None:
        return int(values[key]) if key in values else None

    try:
        return AgentStatus(
            status=status,
            runtime_s=float(values.get("runtime_s", "0")),
            target_pid=int(values.get("target_pid", "0")),
            command_pid=int(values.get("command_pid", "0")),
            release_mono_s=float(values.get("release_mono_s", "0")),
            end_mono_s=float(values.get("end_mono_s", "0")),
            nr_samples=int(values.get("nr_samples", "0")),
            record_bytes=int(values.get("record_bytes", "0")),
            agent_version=values.get("agent_version", "unknown"),
            exit_code=optional_int("exit_code"),
            signal=optional_int("signal"),
            command_exit_code=optional_int("command_exit_code"),
            error=values.get("error"),
        )
    except ValueError as exc:
        raise AgentOutputError(f"status file has a malformed number: {exc}") from exc


def parse_runtime(text: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise AgentOutputError(f"runtime file holds {text.strip()!r}, not seconds") from None
    if not math.isfinite(value) or value < 0:
        raise AgentOutputError(f"runtime {value} is not a duration")
    return value


def load_agent_output(out_dir: Path) -> AgentOutput:
    """Read ``status``, ``runtime`` (if any) and ``samples.csv`` from a run directory."""
    out_dir = Path(out_dir)
    status_path = out_dir / "status"
    if not status_path.is_file():
        raise AgentOutputError(f"{status_path} is missing: the agent did not finish")
    status = parse_status(status_path.read_text())
    runtime_path = out_dir / "runtime"
    runtime = parse_runtime(runtime_path.read_text()) if runtime_path.is_file() else None
    samples_path = out_dir / "samples.csv"
    text = samples_path.read_text() if samples_path.is_file() else ""
    table = parse_samples_csv(text) if text else SampleTable(BASE_COLUMNS, (), ())
    return AgentOutput(status, runtime, table)


# --------------------------------------------------------------------------
# metrics
# --------------------------------------------------------------------------


def _int_mean(values: Sequence[int]) -> int:
    """Integer mean truncated toward zero, as damon-tests' shell arithmetic does."""
    return math.trunc(Fraction(sum(values), len(values)))


def compute_metrics(samples: Sequence[Sample], runtime_s: float | None) -> dict[str, float | int]:
    """Metrics of :data:`damon_eval.metrics.METRICS` from one run's samples.

    A metric is left out when its input is missing (no kdamond in ``orig``,
    no schemes in ``rec``); it is never reported as zero instead.
    """
    metrics: dict[str, float | int] = {}
    if runtime_s is not None:
        metrics["runtime"] = round(runtime_s, 6)
    if not samples:
        return metrics
    first, last = samples[0], samples[-1]
    metrics["memused.avg"] = _int_mean([first.memfree_kib - s.memfree_kib for s in samples])
    metrics["memused_abs.avg"] = _int_mean([s.memtotal_kib - s.memfree_kib for s in samples])
    # RSS only while the workload has processes: the final sample after exit
    # (and sample 0 of a process stopped before its first instruction) hold ~0.
    alive = [s for s in samples if s.nr_procs > 0 and s.rss_tree_kib > 0] or list(samples)
    metrics["rss.avg"] = _int_mean([s.rss_tree_kib for s in alive])
    metrics["rss.max"] = max(s.rss_tree_kib for s in samples)
    metrics["anon_huge.avg"] = _int_mean([s.anon_huge_kib for s in samples])
    metrics["anon_huge.max"] = max(s.anon_huge_kib for s in samples)
    metrics["pswpin"] = last.pswpin - first.pswpin
    metrics["pswpout"] = last.pswpout - first.pswpout
    metrics["pgmajfault"] = last.pgmajfault - first.pgmajfault
    ticked = [s for s in samples if s.kdamond_cpu_ticks is not None]
    wall_s = last.t_s - first.t_s
    if ticked and wall_s > 0:
        ticks = ticked[-1].kdamond_cpu_ticks - ticked[0].kdamond_cpu_ticks  # type: ignore[operator]
        metrics["kdamond_cpu_util"] = round(ticks / (first.clk_tck * wall_s) * 100, 3)
    damos = [s.damos for s in samples if s.damos is not None]
    if damos:
        for name in DAMOS_STATS:
            metrics[f"damos.{name}"] = getattr(damos[-1], name)
    metrics["harness_rss.max"] = max(s.agent_rss_kib for s in samples)
    unknown = set(metrics) - set(METRICS)
    assert not unknown, f"metrics without a definition in damon_eval.metrics: {unknown}"
    return metrics
