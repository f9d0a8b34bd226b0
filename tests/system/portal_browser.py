"""The web portal in a real browser: Debian's headless Chromium driven by Playwright.

No browser is downloaded (``playwright install`` cannot work on the site's machines): Playwright
drives /usr/bin/chromium, installed by scripts/install-system-deps.sh, with a fresh profile
directory for every browser so no cookie or cache leaks from one test to the next.

The fixtures (registered in tests/system/conftest.py) give a test a ``portal_cloud`` (a real
server and agent running tiny VMs, one per test module) and a ``browser`` on it. The portal's
journey (tests/system/portal_journey.py) and ``make screenshots`` use the same ``Browser``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import (
    BrowserContext,
    Page,
    Playwright,
    ViewportSize,
    expect,
    sync_playwright,
)

CHROMIUM = Path("/usr/bin/chromium")
# Headless Chromium on a machine without internet: no sandbox (the tests run as root), no GPU,
# nothing that phones home (QUIC, component updates, sync, first-run pages).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 375, "height": 740}


@contextmanager
def playwright_driver() -> Iterator[Playwright]:
    if not CHROMIUM.exists():
        raise RuntimeError(
            f"{CHROMIUM} is missing: run scripts/install-system-deps.sh (make install)"
        )
    with sync_playwright() as driver:
        yield driver


@dataclass
class Browser:
    """One Chromium with its own profile, on one gridvm server; ``requests`` records every URL
    the pages asked for (documents, styles, scripts, fonts, API calls)."""

    context: BrowserContext
    page: Page
    base_url: str
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # uncaught script errors on the pages
    # "METHOD /api/v1/..." for every REST call the pages' scripts made.
    api_calls: list[str] = field(default_factory=list)

    def record(self, method: str, url: str) -> None:
        self.requests.append(url)
        path = url.removeprefix(self.base_url)
        if path.startswith("/api/"):
            self.api_calls.append(f"{method} {path}")

    def goto(self, path: str) -> None:
        self.page.goto(self.base_url + path)

    def path(self) -> str:
        """The current page's path and query (e.g. /ui/account)."""
        return self.page.url.removeprefix(self.base_url)

    def phone(self) -> None:
        self.page.set_viewport_size(PHONE)

    def desktop(self) -> None:
        self.page.set_viewport_size(DESKTOP)

    def horizontal_overflow(self) -> int:
        """How many pixels the page is wider than the window (0: no horizontal scroll)."""
        overflow: int = self.page.evaluate(
            "document.documentElement.scrollWidth - window.innerWidth"
        )
        return overflow

    def focused(self) -> str:
        """The focused element, as ``tag#id`` or ``tag:text`` (for assertion messages)."""
        described: str = self.page.evaluate(
            """() => {
                const el = document.activeElement;
                if (!el) return "";
                const tag = el.tagName.toLowerCase();
                return el.id ? tag + "#" + el.id : tag + ":" + (el.textContent || "").trim();
            }"""
        )
        return described

    def log_in(self, token: str, next_path: str = "/ui/images") -> None:
        """Log in as a keyboard user: Tab to the labelled token field, type, press Enter."""
        self.goto(f"/ui/login?next={next_path}")
        field_ = self.page.get_by_label("API token")
        for _ in range(10):
            self.page.keyboard.press("Tab")
            if field_.evaluate("el => el === document.activeElement"):
                break
        expect(field_).to_be_focused()
        self.page.keyboard.type(token)
        with self.page.expect_navigation():
            self.page.keyboard.press("Enter")


@contextmanager
def open_browser(driver: Playwright, profile_dir: Path, base_url: str) -> Iterator[Browser]:
    """A headless Chromium with a fresh profile in ``profile_dir``, at desktop size."""
    context = driver.chromium.launch_persistent_context(
        str(profile_dir),
        executable_path=str(CHROMIUM),
        headless=True,
        args=CHROMIUM_ARGS,
        viewport=DESKTOP,
    )
    context.set_default_timeout(15_000)
    expect.set_options(timeout=15_000)  # a busy 2-core machine also boots VMs meanwhile
    try:
        page = context.pages[0] if context.pages else context.new_page()
        browser = Browser(context, page, base_url)
        context.on("request", lambda request: browser.record(request.method, request.url))
        page.on("pageerror", lambda error: browser.errors.append(str(error)))
        yield browser
    finally:
        context.close()
