"""Guest test session checks."""

from __future__ import annotations

import os

import pytest
from guest_helpers import gone, qemu_children_of


@pytest.fixture(scope="session", autouse=True)
def no_qemu_outlives_the_tests():
    """After the guest tests, no QEMU this test process started is still running."""
    yield
    left = [pid for pid in qemu_children_of(os.getpid()) if not gone(pid, 30)]
    assert not left, f"QEMU processes left running after the tests: {left}"
