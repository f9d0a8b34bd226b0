"""Uploading an image from the My images page in headless Chromium: the page's script sends
the file through the resumable upload API in chunks; a refused file leaves nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.api.helpers import make_qcow2
from tests.system.cloud import Cloud
from tests.system.portal_browser import Browser

pytestmark = pytest.mark.system


def _api_calls(browser: Browser, method_path: str) -> list[str]:
    return [url for url in browser.api_calls if url.startswith(method_path)]


def test_an_upload_goes_in_chunks_and_the_image_appears(
    browser: Browser, portal_cloud: Cloud, tmp_path: Path
) -> None:
    disk = make_qcow2(tmp_path / "analysis.qcow2", "256M")
    browser.log_in(portal_cloud.server.admin_token, next_path="/ui/images")
    page = browser.page
    expect(page.locator("#upload-progress")).to_be_hidden()  # nothing under way yet
    page.locator("#upload-file").set_input_files(str(disk))
    page.locator("#upload-name").fill("js-upload")
    with page.expect_navigation():
        page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.locator('#images tr[data-image-name="js-upload"]')).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("Uploaded image js-upload:1")
    # The script used the resumable upload API, not the plain form.
    assert _api_calls(browser, "POST /api/v1/uploads")
    assert _api_calls(browser, "PATCH /api/v1/uploads/")
    image = portal_cloud.admin.get("/api/v1/images/js-upload").json()
    assert image["size"] > 0 and image["format"] == "qcow2"
    assert portal_cloud.admin.get("/api/v1/uploads").json() == []
    assert browser.errors == []


def test_a_refused_file_shows_why_and_leaves_no_image_or_upload(
    browser: Browser, portal_cloud: Cloud, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.qcow2"
    notes.write_text("this is not a disk image\n" * 2000)
    browser.log_in(portal_cloud.server.admin_token, next_path="/ui/images")
    page = browser.page
    page.locator("#upload-file").set_input_files(str(notes))
    page.locator("#upload-name").fill("not-an-image")
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("The upload failed")
    assert browser.path() == "/ui/images"  # no reload: the message stays
    assert portal_cloud.admin.get("/api/v1/images/not-an-image").status_code == 404
    assert portal_cloud.admin.get("/api/v1/uploads").json() == []
