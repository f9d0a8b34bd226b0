from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Playwright

from tests.system.cloud import Cloud, run_cloud
from tests.system.portal_browser import Browser, open_browser, playwright_driver

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def cloud(tmp_path_factory: pytest.TempPathFactory, starter_dir: Path) -> Iterator[Cloud]:
    # A short base path keeps QEMU's unix socket paths under the 108-byte limit.
    with run_cloud(tmp_path_factory.mktemp("c"), starter_dir) as running:
        yield running


# The web portal in headless Chromium (tests/system/portal_browser.py): one cloud per test
# module, a fresh browser profile per test.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with playwright_driver() as driver:
        yield driver


@pytest.fixture(scope="module")
def portal_cloud(tmp_path_factory: pytest.TempPathFactory, starter_dir: Path) -> Iterator[Cloud]:
    with run_cloud(tmp_path_factory.mktemp("p"), starter_dir) as running:
        yield running


@pytest.fixture
def browser(playwright: Playwright, portal_cloud: Cloud, tmp_path: Path) -> Iterator[Browser]:
    with open_browser(playwright, tmp_path / "chromium", portal_cloud.server.url) as opened:
        yield opened
