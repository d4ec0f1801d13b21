"""damon-eval: a reproducible evaluation and benchmarking harness for Linux DAMON.

Glossary (names in the code follow it):

run
    A noun: one measured execution of one workload under one configuration, one
    repeat.  "execute" is the verb.
configuration
    One of the evaluation set-ups of the DAMON evaluation document (orig, rec,
    prec, thp, ethp, prcl) or a user-written one: THP mode, DAMON context,
    schemes, swap.  Stored as YAML in ``configs/``.
campaign
    A matrix of workloads x configurations x repeats, plus the guest it runs in.
guest
    A QEMU virtual machine booted from a cached image; every run happens in one.
scheme
    A DAMON-based operation scheme (DAMOS).  Its *spec* is the human form
    (sizes in bytes, frequencies in percent, ages in microseconds); its *raw*
    form holds the kernel's values for given monitoring intervals.
record
    A file of DAMON monitoring results (``damon_aggregated`` snapshots).
snapshot
    The regions of one target at the end of one aggregation interval.
kdamond
    A DAMON worker thread; the harness only ever touches the ones it created.

Variables ending in ``_path`` hold :class:`pathlib.Path` objects, ``_us`` values
are microseconds, ``_kib`` kibibytes and ``_s`` seconds.
"""

__version__ = "0.1.0"
