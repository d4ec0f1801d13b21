"""Open a Snakemake HTML report in headless Chromium and check what renders.

Uses Debian's ``chromium`` (never a downloaded browser) driven by Playwright.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def require_chromium():
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (./bootstrap test installs it as root)")
    return pytest.importorskip("playwright.sync_api", reason="playwright is not installed")


def open_entry(page, category: str, label: str):
    """Click a result category, then the eye icon of the row labelled ``label``."""
    page.get_by_text("Results").first.click()
    page.get_by_text(category, exact=True).click()
    page.locator("tr", has_text=label).first.locator("a[iconname=eye]").click()
    page.wait_for_timeout(500)


def rendered_tables(page) -> list[str]:
    """Text of every <table> inside the displayed HTML result (an iframe)."""
    texts = []
    for frame in page.frames[1:]:
        for i in range(frame.locator("table").count()):
            texts.append(frame.locator("table").nth(i).inner_text())
    return texts


def loaded_images(page) -> list[tuple[int, int]]:
    """(naturalWidth, naturalHeight) of every displayed result image."""
    sizes = []
    images = page.locator("img[src^='data:image']")
    for i in range(images.count()):
        sizes.append(tuple(images.nth(i).evaluate("e => [e.naturalWidth, e.naturalHeight]")))
    return sizes


def check_report(report: Path, *, metric_tables: list[str], plots: list[str], extra=()):
    """Assert that tables and plots of the report render; return notes for failures."""
    sync_api = require_chromium()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(report.resolve().as_uri())
        page.wait_for_selector("text=Results")
        for metric in metric_tables:
            open_entry(page, "1. Tables", metric)
            tables = rendered_tables(page)
            assert tables, f"table {metric} did not render"
            assert "orig" in tables[0] and "total" in tables[0], tables[0][:300]
        for metric in plots:
            open_entry(page, "3. Overhead plots", metric)
            sizes = [s for s in loaded_images(page) if s[0] > 200]
            assert sizes, f"plot {metric} did not render"
        for category, label, needle in extra:
            open_entry(page, category, label)
            frames_text = " ".join(f.inner_text("body") for f in page.frames[1:])
            images = [s for s in loaded_images(page) if s[0] > 200]
            assert needle in frames_text or (needle == "<image>" and images), (category, label)
        browser.close()
