"""Uploading an image from the My images page in headless Chromium: the page's script sends
the file through the resumable upload API in chunks; a refused file leaves nothing; a chunk
that fails is retried from the server's offset, and an upload cut off by a reload resumes
when the same file is chosen again."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import time
from pathlib import Path

import pytest
from playwright.sync_api import Request, Route, expect

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


MIB = 1024 * 1024
# Every text the page's live region (and its upload progress) showed, kept in sessionStorage
# so it survives reloads (an announcement may last only until the page reloads at the end).
RECORD_TEXTS = """
new MutationObserver(() => {
  for (const id of ["live-status", "upload-progress-text"]) {
    const element = document.getElementById(id);
    if (!element || !element.textContent) continue;
    const seen = JSON.parse(sessionStorage.getItem("test-" + id) || "[]");
    if (seen[seen.length - 1] !== element.textContent) {
      seen.push(element.textContent);
      sessionStorage.setItem("test-" + id, JSON.stringify(seen));
    }
  }
}).observe(document, { subtree: true, childList: true, characterData: true });
"""


def _shown(browser: Browser, element_id: str = "live-status") -> list[str]:
    """The texts element ``element_id`` showed, in order, on every page so far."""
    seen: list[str] = browser.page.evaluate(
        f"JSON.parse(sessionStorage.getItem('test-{element_id}') || '[]')"
    )
    return seen


def _random_disk(path: Path, megabytes: int) -> tuple[Path, str]:
    """A qcow2 disk at ``path`` holding ``megabytes`` MiB of random bytes (a chunk lost, sent
    twice or out of order would show), and the sha256 of the disk's contents."""
    raw = path.with_suffix(".contents")
    raw.write_bytes(os.urandom(megabytes * MIB))
    subprocess.run(
        ["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(path)], check=True
    )
    return path, hashlib.sha256(raw.read_bytes()).hexdigest()


def _offsets(path: Path) -> list[str]:
    """The Upload-Offset of each 1 MiB chunk of the file."""
    return [str(offset) for offset in range(0, path.stat().st_size, MIB)]


def _percent(sent: int, path: Path) -> str:
    return f"{100 * sent // path.stat().st_size}%"


def _small_chunks(browser: Browser) -> None:
    """The page's script sends 1 MiB chunks instead of 8 MiB (a few MiB make a few chunks)."""
    browser.page.locator("#upload-form").evaluate(f"form => form.dataset.chunkBytes = '{MIB}'")


def _stored_sha256(cloud: Cloud, name: str) -> str:
    """The sha256 of the image as the server stored it, read back as a raw disk."""
    image = cloud.admin.get(f"/api/v1/images/{name}").json()
    back = cloud.admin.get(f"/api/v1/images/{image['id']}/content", params={"format": "raw"})
    assert back.status_code == 200, back.text
    return hashlib.sha256(back.content).hexdigest()


def test_failed_chunks_are_retried_from_the_servers_offset(
    browser: Browser, portal_cloud: Cloud, tmp_path: Path
) -> None:
    disk, contents = _random_disk(tmp_path / "flaky.qcow2", 4)
    browser.context.add_init_script(RECORD_TEXTS)
    browser.log_in(portal_cloud.server.admin_token, next_path="/ui/images")
    page = browser.page
    sent: list[str] = []  # Upload-Offset of every chunk that reached the server

    def flaky(route: Route, request: Request) -> None:
        if request.method != "PATCH":
            route.continue_()
            return
        offset = request.headers["upload-offset"]
        if offset == str(MIB) and str(MIB) not in sent and "503" not in sent:
            sent.append("503")  # the server (or a proxy) fails once, the chunk is not taken
            route.fulfill(status=503, json={"message": "the proxy is restarting"})
            return
        sent.append(offset)
        if offset == str(2 * MIB) and sent.count(offset) == 1:
            route.fetch()  # the server takes the chunk, but its answer is lost on the way
            route.abort("connectionreset")
            return
        time.sleep(0.4)  # a slow link: the progress has time to show a rate
        route.continue_()

    page.route("**/api/v1/uploads/*", flaky)
    _small_chunks(browser)
    page.locator("#upload-file").set_input_files(str(disk))
    page.locator("#upload-name").fill("flaky-link")
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.locator('#images tr[data-image-name="flaky-link"]')).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("Uploaded image flaky-link:1")
    announced = _shown(browser)
    assert announced.count("Connection lost, retrying (1 of 4)...") == 2, announced
    assert f"Connection back: the upload goes on from {_percent(MIB, disk)}." in announced
    # After the lost answer the script asked the server for its offset (3 MiB) and went on
    # from there: every chunk reached the server exactly once.
    assert f"Connection back: the upload goes on from {_percent(3 * MIB, disk)}." in announced
    offsets = _offsets(disk)
    assert sent == [offsets[0], "503", *offsets[1:]]
    progress = _shown(browser, "upload-progress-text")
    rate = re.compile(r"^\d+%: [0-9.]+ of [0-9.]+ MiB sent, [0-9.]+ MiB/s$")
    assert any(rate.match(text) for text in progress), progress
    assert _stored_sha256(portal_cloud, "flaky-link") == contents
    image = portal_cloud.admin.get("/api/v1/images/flaky-link").json()
    assert (image["uploaded_format"], image["virtual_size"]) == ("qcow2", 4 * MIB)
    assert portal_cloud.admin.get("/api/v1/uploads").json() == []
    assert browser.errors == []


def test_an_upload_cut_off_by_a_reload_resumes_when_the_file_is_chosen_again(
    browser: Browser, portal_cloud: Cloud, tmp_path: Path
) -> None:
    disk, contents = _random_disk(tmp_path / "resumed.qcow2", 4)
    browser.context.add_init_script(RECORD_TEXTS)
    browser.log_in(portal_cloud.server.admin_token, next_path="/ui/images")
    page = browser.page
    sent: list[str] = []
    link_down = True

    def cut_after_the_first_chunk(route: Route, request: Request) -> None:
        if request.method == "PATCH":
            offset = request.headers["upload-offset"]
            if link_down and offset != "0":
                route.abort("internetdisconnected")
                return
            sent.append(offset)
        route.continue_()

    page.route("**/api/v1/uploads/*", cut_after_the_first_chunk)
    _small_chunks(browser)
    page.locator("#upload-file").set_input_files(str(disk))
    page.locator("#upload-name").fill("resumed")
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("Connection lost, retrying (1 of 4)...")
    # The progress shows the percent and the bytes the server has (a rate once it moves).
    expect(page.locator("#upload-progress-text")).to_have_text(
        re.compile(rf"^{_percent(MIB, disk)}: 1\.0 of [0-9.]+ MiB sent(, [0-9.]+ MiB/s)?$")
    )
    link_down = False
    page.reload()  # the user gives up waiting (or the browser was closed)
    # The page lists the unfinished upload, a quarter received.
    row = page.locator("#uploads tr[data-upload-id]")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("resumed")
    expect(row).to_contain_text(_percent(MIB, disk))
    _small_chunks(browser)
    page.locator("#upload-file").set_input_files(str(disk))  # the same file again
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.locator('#images tr[data-image-name="resumed"]')).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("Uploaded image resumed:1")
    resuming = f"Resuming the earlier upload of resumed.qcow2 ({_percent(MIB, disk)} sent)."
    assert resuming in _shown(browser)
    # The first chunk reached the server once; the rest came after the reload.
    assert sent == _offsets(disk)
    assert _stored_sha256(portal_cloud, "resumed") == contents
    assert portal_cloud.admin.get("/api/v1/uploads").json() == []
    expect(page.locator("#uploads")).to_have_count(0)  # nothing unfinished any more
    assert browser.errors == []


def test_a_chunk_the_server_refuses_stops_at_once_and_leaves_nothing(
    browser: Browser, portal_cloud: Cloud, tmp_path: Path
) -> None:
    disk, _ = _random_disk(tmp_path / "refused.qcow2", 3)
    browser.context.add_init_script(RECORD_TEXTS)
    browser.log_in(portal_cloud.server.admin_token, next_path="/ui/images")
    page = browser.page
    refusal = {"error": "payload_too_large", "message": "image storage quota: 0 B left"}

    def quota_full(route: Route, request: Request) -> None:
        if request.method == "PATCH" and request.headers["upload-offset"] != "0":
            route.fulfill(status=413, json=refusal)
            return
        route.continue_()

    page.route("**/api/v1/uploads/*", quota_full)
    _small_chunks(browser)
    page.locator("#upload-file").set_input_files(str(disk))
    page.locator("#upload-name").fill("over-quota")
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text(
        "The upload failed: image storage quota: 0 B left"
    )
    assert not any("retrying" in text for text in _shown(browser))  # no retry
    assert portal_cloud.admin.get("/api/v1/uploads").json() == []  # the first MiB is gone too
    assert portal_cloud.admin.get("/api/v1/images/over-quota").status_code == 404
    page.reload()
    expect(page.locator("#uploads")).to_have_count(0)
    assert page.evaluate("localStorage.getItem('gridvm-unfinished-uploads')") == "[]"
