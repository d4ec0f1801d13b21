"""The default physical-address target: the largest "System RAM" range of /proc/iomem.

That is what old damo monitored for the seed document's 'prec' configuration
("It monitors 17GB sized 'System RAM' region").  /proc/iomem shows every
address as zero to readers without CAP_SYS_ADMIN; that is detected and refused
instead of silently monitoring nothing.
"""

from __future__ import annotations

from damon_eval.damon.errors import DamonError, DamonPermissionError
from damon_eval.damon.model import Region, Target
from damon_eval.fs import FileSystem

IOMEM_PATH = "/proc/iomem"


def parse_system_ram(text: str, *, source: str = IOMEM_PATH) -> list[Region]:
    """All "System RAM" ranges of an /proc/iomem text, as half-open regions.

    /proc/iomem ranges are closed (``00100000-bfffffff``), hence ``end + 1``.
    """
    ranges: list[tuple[int, int]] = []
    for line in text.splitlines():
        span, sep, name = line.partition(" : ")
        if not sep or name.strip() != "System RAM":
            continue
        start_text, dash, end_text = span.strip().partition("-")
        if not dash:
            continue
        try:
            ranges.append((int(start_text, 16), int(end_text, 16) + 1))
        except ValueError:
            continue
    if ranges and all(start == 0 and end == 1 for start, end in ranges):
        raise DamonPermissionError(
            f"{source} shows all addresses as zero: reading it needs root (CAP_SYS_ADMIN); "
            "cannot find the System RAM range for a paddr target"
        )
    return [Region(start, end) for start, end in ranges if end > start]


def largest_system_ram(
    fs: FileSystem, *, path: str = IOMEM_PATH, text: str | None = None
) -> Region:
    """The largest "System RAM" range of the target machine: from ``text`` (the
    file as already read, e.g. by a :class:`~damon_eval.damon.probe.TargetProbe`)
    or read through ``fs`` (one round trip)."""
    if text is None:
        text = fs.read(path)
    regions = parse_system_ram(text, source=f"{fs.description}:{path}")
    if not regions:
        raise DamonError(f"no 'System RAM' range in {fs.description}:{path}")
    return max(regions, key=lambda r: (r.size, -r.start))


def system_ram_target(fs: FileSystem, *, path: str = IOMEM_PATH, text: str | None = None) -> Target:
    """A paddr :class:`Target` covering the largest System RAM range (``text``: see
    :func:`largest_system_ram`)."""
    return Target(pid=None, regions=(largest_system_ram(fs, path=path, text=text),))
