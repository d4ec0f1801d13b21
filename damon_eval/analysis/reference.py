"""Published numbers: the seed's tables as reference data.

``damon_eval/data/reference/eval-v18-<metric>.csv`` holds each table of the
seed (DAMON v18 documentation, eval.rst) as published: ``workload, config,
value, overhead_pct`` with the printed strings (``-0.00`` included) and the
``total`` row.  :func:`parse_seed_table` reads the fixed-width text form, so
the files can be regenerated from the document (``write_reference_csv``).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from damon_eval.analysis.errors import RunTableError
from damon_eval.atomic import atomic_write_text
from damon_eval.errors import ConfigError
from damon_eval.paths import DATA_DIR

REFERENCE_DIR = DATA_DIR / "reference"
SEED_SOURCE = "eval-v18"
TOTAL = "total"

# What the seed measured on (eval.rst, "Setup"), for the comparison's caveats.
SEED_SETUP = (
    "QEMU/KVM guest with 20 GB RAM on an Intel i7 host, Linux v5.7 with the DAMON v16 "
    "patchset, 13 PARSEC3 and 12 SPLASH-2X workloads, 5 repeats averaged"
)
SEED_ACCEL = "kvm"

_OVERHEAD = re.compile(r"^\((-?[0-9]+\.[0-9]+)\)$")
_NUMBER = re.compile(r"^-?[0-9]+\.[0-9]+$")


@dataclass(frozen=True, slots=True)
class PublishedTable:
    """One published table; numbers kept as their printed strings too."""

    source: str
    metric: str
    configs: tuple[str, ...]
    workloads: tuple[str, ...]
    value_text: Mapping[tuple[str, str], str]  # (workload or "total", config) -> "107.228"
    overhead_text: Mapping[tuple[str, str], str]  # same keys, non-baseline -> "0.59"

    @property
    def baseline(self) -> str:
        return self.configs[0]

    def value(self, workload: str, config: str) -> float | None:
        text = self.value_text.get((workload, config))
        return None if text is None else float(text)

    def overhead(self, workload: str, config: str) -> float | None:
        text = self.overhead_text.get((workload, config))
        return None if text is None else float(text)

    def means_as_samples(self) -> dict[tuple[str, str], list[float]]:
        """The per-workload means as one-element samples (for table_from_samples)."""
        return {(w, c): [float(text)] for (w, c), text in self.value_text.items() if w != TOTAL}


def parse_seed_table(text: str, source: str = SEED_SOURCE) -> PublishedTable:
    """Parse the fixed-width text form (``metric orig rec (overhead) ...``)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        raise ConfigError(f"{source}: empty table text")
    header = lines[0].split()
    metric = header[0]
    configs = [header[1]]
    rest = header[2:]
    if len(rest) % 2 or any(rest[i + 1] != "(overhead)" for i in range(0, len(rest), 2)):
        raise ConfigError(
            f"{source}: header must be '<metric> <baseline> (<config> (overhead))...': {lines[0]!r}"
        )
    configs += rest[0::2]
    values: dict[tuple[str, str], str] = {}
    overheads: dict[tuple[str, str], str] = {}
    workloads = []
    for number, line in enumerate(lines[1:], start=2):
        fields = line.split()
        if len(fields) != 2 * len(configs):
            raise ConfigError(
                f"{source}: line {number}: expected {2 * len(configs)} fields, got {len(fields)}"
            )
        label = fields[0]
        if label != TOTAL:
            workloads.append(label)
        if not _NUMBER.match(fields[1]):
            raise ConfigError(f"{source}: line {number}: {fields[1]!r} is not a number")
        values[(label, configs[0])] = fields[1]
        for i, config in enumerate(configs[1:]):
            value, overhead = fields[2 + 2 * i], fields[3 + 2 * i]
            match = _OVERHEAD.match(overhead)
            if not _NUMBER.match(value) or not match:
                raise ConfigError(
                    f"{source}: line {number}: {value!r} {overhead!r} is not 'value (overhead)'"
                )
            values[(label, config)] = value
            overheads[(label, config)] = match.group(1)
    return PublishedTable(source, metric, tuple(configs), tuple(workloads), values, overheads)


def published_csv_text(table: PublishedTable) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["workload", "config", "value", "overhead_pct"])
    for workload in (*table.workloads, TOTAL):
        for config in table.configs:
            writer.writerow(
                [
                    workload,
                    config,
                    table.value_text[(workload, config)],
                    table.overhead_text.get((workload, config), ""),
                ]
            )
    return buffer.getvalue()


def reference_path(metric: str, source: str = SEED_SOURCE) -> Path:
    return REFERENCE_DIR / f"{source}-{metric}.csv"


def published_metrics(source: str = SEED_SOURCE) -> list[str]:
    """Metrics with a published table, in the seed's order."""
    from damon_eval.metrics import SEED_TABLE_METRICS

    return [m for m in SEED_TABLE_METRICS if reference_path(m, source).is_file()]


def load_published(metric: str, source: str = SEED_SOURCE) -> PublishedTable:
    path = reference_path(metric, source)
    if not path.is_file():
        raise RunTableError(
            f"no published {source} table for metric {metric!r}; published: "
            f"{', '.join(published_metrics(source))}"
        )
    with path.open(newline="") as stream:
        rows = list(csv.DictReader(stream))
    configs: list[str] = []
    workloads: list[str] = []
    values: dict[tuple[str, str], str] = {}
    overheads: dict[tuple[str, str], str] = {}
    for row in rows:
        workload, config = row["workload"], row["config"]
        if config not in configs:
            configs.append(config)
        if workload != TOTAL and workload not in workloads:
            workloads.append(workload)
        values[(workload, config)] = row["value"]
        if row["overhead_pct"]:
            overheads[(workload, config)] = row["overhead_pct"]
    return PublishedTable(source, metric, tuple(configs), tuple(workloads), values, overheads)


def write_reference_csv(table: PublishedTable) -> Path:
    path = reference_path(table.metric, table.source)
    atomic_write_text(path, published_csv_text(table))
    return path


def as_metric_table(published: PublishedTable, configs: Sequence[str] | None = None):
    """The published table as a :class:`~damon_eval.analysis.tables.MetricTable` carrying
    the PRINTED values and percentages (n = 1, no statistics): what the seed states,
    independent of how we would recompute it.
    """
    from damon_eval.analysis.stats import Estimate
    from damon_eval.analysis.tables import Cell, MetricTable

    def cell(workload: str, config: str) -> Cell:
        value = published.value(workload, config)
        estimate = None if value is None else Estimate(value, 1, None, None, None)
        return Cell(estimate, published.overhead(workload, config))

    configs = tuple(configs or published.configs)
    unknown = [c for c in configs if c not in published.configs]
    if unknown:
        raise ConfigError(
            f"configuration {unknown[0]!r} is not in the published table; "
            f"valid: {', '.join(published.configs)}"
        )
    baseline = published.baseline if published.baseline in configs else None
    if baseline:
        configs = (baseline, *(c for c in configs if c != baseline))
    cells = {(w, c): cell(w, c) for w in published.workloads for c in configs}
    return MetricTable(
        metric=published.metric,
        configs=configs,
        baseline=baseline,
        workloads=published.workloads,
        cells=cells,
        summary_label=TOTAL,
        summary={c: cell(TOTAL, c) for c in configs},
        summary_workloads=published.workloads,
        arithmetic="seed",
    )
