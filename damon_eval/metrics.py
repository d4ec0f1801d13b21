"""The metrics a run yields: names, units and meaning.

This table is the contract between the measurement code (which writes them into
``result.json``), the tidy run table (``runs.csv``, one row per run and
metric) and the analysis (tables, statistics, plots).  Names follow the DAMON
evaluation document where it has one (``runtime``, ``memused.avg``,
``rss.avg``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    unit: str
    description: str
    lower_is_better: bool = True


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("runtime", "s", "wall time of the workload process alone (guest CLOCK_MONOTONIC)"),
        Metric(
            "memused.avg",
            "KiB",
            "mean of MemFree[0] - MemFree[t] over the 1 s samples (relative to the first "
            "sample taken after dropping caches; the definition of damon-tests)",
        ),
        Metric("memused_abs.avg", "KiB", "mean of MemTotal - MemFree over the samples"),
        Metric("rss.avg", "KiB", "mean RSS of the workload's whole process tree"),
        Metric("rss.max", "KiB", "largest RSS sample of the workload's process tree"),
        Metric("anon_huge.avg", "KiB", "mean AnonHugePages from /proc/meminfo"),
        Metric("anon_huge.max", "KiB", "largest AnonHugePages sample"),
        Metric("pswpin", "pages", "pages swapped in during the run (/proc/vmstat delta)"),
        Metric("pswpout", "pages", "pages swapped out during the run (/proc/vmstat delta)"),
        Metric("pgmajfault", "faults", "major faults during the run (/proc/vmstat delta)"),
        Metric(
            "kdamond_cpu_util",
            "%",
            "CPU time of the harness's kdamond (utime+stime) over the run's wall time, x100",
        ),
        Metric("damos.nr_tried", "regions", "DAMOS regions tried, summed over schemes", False),
        Metric("damos.sz_tried", "bytes", "DAMOS bytes tried, summed over schemes", False),
        Metric("damos.nr_applied", "regions", "DAMOS regions applied, summed over schemes", False),
        Metric("damos.sz_applied", "bytes", "DAMOS bytes applied, summed over schemes", False),
        Metric("damos.qt_exceeds", "times", "DAMOS quota exceeds, summed over schemes"),
        Metric(
            "harness_rss.max",
            "KiB",
            "largest total RSS of the processes the harness keeps in the guest during the run",
        ),
    )
}

# The three tables of the evaluation document, in its order.
SEED_TABLE_METRICS = ("runtime", "memused.avg", "rss.avg")

# The configurations of the evaluation document, in its column order.
SEED_CONFIGS = ("orig", "rec", "prec", "thp", "ethp", "prcl")
BASELINE_CONFIG = "orig"
