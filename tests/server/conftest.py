"""Browser fixtures of the web-app tests: Debian's chromium driven by Playwright, and a real
``tijeras serve`` process on the tiny random model with the demo images as samples."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.web import CHROMIUM, CHROMIUM_ARGS, serve


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (scripts/test installs it with apt)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def server(tmp_path_factory, truck_path: Path) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("server")
    yield from serve(["--model", "test-tiny", "--samples", str(truck_path.parent)], tmp)


@pytest.fixture()
def page(browser, server: str):
    """A fresh page at 1366 x 768 on the tiny-model server; no script error may occur."""
    context = browser.new_context(viewport={"width": 1366, "height": 768}, accept_downloads=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server)
    page.wait_for_selector("#model-badge:has-text('test-tiny')")
    yield page
    context.close()
    assert errors == [], errors
