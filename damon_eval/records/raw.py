"""``report raw``: the seed's human-readable dump of every snapshot.

Layout (usage.rst of the seed, printed by its ``bin2txt.py``)::

    start_time:  193485829398
    rel time:                0
    nr_tasks:  1
    pid:  1348
    nr_regions:  4
    560189609000-56018abce000(  22827008):\t0
    <blank line after each task>

Snapshots that share one timestamp (all tasks of one seed-era binary record)
are printed under one ``rel time`` with ``nr_tasks`` > 1; trace records stamp
every target's snapshot separately, so they show ``nr_tasks: 1``.  The label
is ``pid`` for seed-era binary records (whose target ids were pids) and
``target_id`` otherwise.  ``start_time`` is the first snapshot's time in ns.
"""

from __future__ import annotations

from collections.abc import Iterator

from damon_eval.records.store import Record


def raw_lines(record: Record) -> Iterator[str]:
    """The report, one line at a time (no trailing newlines)."""
    label = record.info.target_label
    start_time: int | None = None
    last_time: int | None = None
    for chunk in record.chunks():
        ends = chunk.end_ns.tolist()
        targets = chunk.target.tolist()
        offsets = chunk.offsets.tolist()
        starts = chunk.start.tolist()
        region_ends = chunk.end.tolist()
        nrs = chunk.nr_accesses.tolist()
        i = 0
        while i < chunk.n_snapshots:
            time = ends[i]
            j = i + 1
            while j < chunk.n_snapshots and ends[j] == time:
                j += 1
            if start_time is None:
                start_time = time
                yield f"start_time:  {start_time}"
            if time != last_time:
                yield f"rel time: {time - start_time:16d}"
                yield f"nr_tasks:  {j - i}"
            last_time = time
            for k in range(i, j):
                yield f"{label}:  {record.info.targets[targets[k]].target_id}"
                yield f"nr_regions:  {offsets[k + 1] - offsets[k]}"
                for r in range(offsets[k], offsets[k + 1]):
                    size = region_ends[r] - starts[r]
                    yield f"{starts[r]:012x}-{region_ends[r]:012x}({size:10d}):\t{nrs[r]}"
                yield ""
            i = j
