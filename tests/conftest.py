"""Shared pytest set-up.

Markers: ``guest`` tests boot a QEMU guest (CI runs them; they skip, saying why,
only when QEMU or the image tooling is absent).  Everything unmarked is a fast
unit test that needs no root, no QEMU and no network.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


# Test-data generators (tests/fixtures/*.py) are importable from every test.
sys.path.insert(0, str(REPO_ROOT / "tests" / "fixtures"))


_LEAKS_ARE_ERRORS = (
    pytest.mark.filterwarnings("error::ResourceWarning"),
    pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning"),
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Unit tests fail on an unclosed file, socket or pipe (the harness runs for hours)."""
    unit = REPO_ROOT / "tests" / "unit"
    for item in items:
        if unit in item.path.parents:
            for mark in _LEAKS_ARE_ERRORS:
                item.add_marker(mark)
