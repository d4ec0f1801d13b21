"""Writing a benchmark's results into docs/benchmarks.md, between its markers."""

from __future__ import annotations

from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def write_section(section: str, start: str, end: str, path: Path = DOC) -> Path:
    """Put ``section`` (which begins with ``start`` and ends with ``end``) in place of
    the text between those markers, or append it when the markers are not there yet."""
    section = section.rstrip("\n") + "\n"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        tail = rest.split(end, 1)[1].lstrip("\n")
        text = head + section + ("\n" + tail if tail else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)
    return path
