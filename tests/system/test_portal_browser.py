"""The portal's login and account pages in headless Chromium, against a real server and agent:
keyboard use, a phone's width, and no asset from outside the server."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.system.cloud import Cloud
from tests.system.portal_browser import Browser

pytestmark = pytest.mark.system

NAV = ["My images", "Run", "Queue", "Hosts", "Groups"]


def test_logging_in_with_the_keyboard_lands_on_the_page_asked_for(
    browser: Browser, portal_cloud: Cloud
) -> None:
    me = portal_cloud.admin.get("/api/v1/whoami").json()
    browser.log_in(portal_cloud.server.admin_token, next_path="/ui/account")
    assert browser.path() == "/ui/account"
    expect(browser.page.locator("#account-name")).to_have_text(me["name"])
    expect(browser.page.get_by_role("button", name="Log out")).to_be_visible()
    assert browser.errors == []


def test_a_wrong_token_shows_why_and_opens_no_session(browser: Browser) -> None:
    browser.log_in("not-a-real-token", next_path="/ui/account")
    alert = browser.page.get_by_role("alert")
    expect(alert).to_contain_text("not valid")
    assert browser.path().startswith("/ui/login")
    expect(browser.page.get_by_label("API token")).to_be_visible()
    browser.goto("/ui/account")  # still logged out: back to the login page
    assert browser.path().startswith("/ui/login")


def test_the_skip_link_is_the_first_tab_stop_and_the_nav_is_reachable_by_keyboard(
    browser: Browser, portal_cloud: Cloud
) -> None:
    browser.log_in(portal_cloud.server.admin_token, next_path="/ui/account")
    page = browser.page
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()

    browser.goto("/ui/account")
    stops = []
    for _ in range(12):
        page.keyboard.press("Tab")
        stops.append(page.evaluate("(document.activeElement.textContent || '').trim()"))
    reached = [stop for stop in stops if stop in NAV]
    assert reached == NAV, stops
    assert "Log out" in stops


@pytest.mark.parametrize("logged_in", [False, True], ids=["login", "account"])
def test_pages_fit_a_phone_without_horizontal_scroll(
    browser: Browser, portal_cloud: Cloud, logged_in: bool
) -> None:
    browser.phone()
    if logged_in:
        browser.log_in(portal_cloud.server.admin_token, next_path="/ui/account")
        assert browser.path() == "/ui/account"
    else:
        browser.goto("/ui/login")
    expect(browser.page.locator("h1")).to_be_visible()
    assert browser.horizontal_overflow() <= 0


def test_the_pages_load_nothing_from_outside_the_server(
    browser: Browser, portal_cloud: Cloud
) -> None:
    browser.log_in(portal_cloud.server.admin_token, next_path="/ui/account")
    browser.goto("/ui/account")
    with browser.page.expect_navigation():
        browser.page.get_by_role("button", name="Log out").click()
    expect(browser.page.get_by_role("status")).to_contain_text("logged out")
    outside = [url for url in browser.requests if not url.startswith(browser.base_url + "/")]
    assert outside == []
    loaded = {url.removeprefix(browser.base_url) for url in browser.requests}
    assert {"/ui/static/portal.css", "/ui/static/portal.js"} <= loaded
    assert browser.errors == []
