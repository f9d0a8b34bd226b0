"""The portal journey of issue 7 in a real browser, as a user clicks through it.

Log in, add an image from the template ``tiny`` under a new name, run three VMs of it (after a
Run form the server refuses), watch them reach ``done`` in the queue without reloading, read a
console log, download a VM's results from its page, and look at the admin pages.
``run_journey`` asserts what the user sees at every step; the journey test
(tests/system/test_portal_journey.py) runs it, and ``make screenshots``
(scripts/portal_screenshots.py) runs the same steps saving a PNG of each page.
"""

from __future__ import annotations

import re
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import Locator, expect

from tests.system.cloud import Cloud
from tests.system.portal_browser import Browser

TEMPLATE = "tiny"
COPY = "tiny-portal"
VM_NAME = "portal"
COUNT = 3
MEMORY_MIB = "192"  # what the tiny guest needs (as the other system tests run it)
JOB = (
    '#!/bin/sh\necho "hello from the portal on $(hostname)"\n'
    'echo "result of $(hostname)" > "$GRIDVM_OUTPUT/answer.txt"\nexit 0\n'
)
BAD_WALLTIME = "soon"  # not a duration: only the server can tell, so it must say why
FINISH_TIMEOUT_MS = 300_000  # three guests under TCG on a busy 2-core machine
# JavaScript: some of the VMs' state cells show them booting or running (or all have ended).
LIVE_OR_ENDED = """ids => {
  const states = ids.map(id => (document.querySelector(
    `#vms tr[data-vm-id="${id}"] .state`)?.textContent || "").trim());
  return states.some(s => s === "booting" || s === "running") || states.every(s => s === "done");
}"""
NON_EMPTY = re.compile(r"\S")
PHONE_PAGES = ["/ui/images", "/ui/run", "/ui/queue", "/ui/admin/hosts", "/ui/admin/groups"]


@dataclass
class Shots:
    """Screenshots of the journey's pages into ``directory`` (None: none taken)."""

    directory: Path | None = None
    taken: list[Path] = field(default_factory=list)

    def take(self, browser: Browser, name: str) -> None:
        if self.directory is None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{name}.png"
        browser.page.screenshot(path=str(path), full_page=True)
        self.taken.append(path)


@dataclass
class JourneyResult:
    vm_ids: list[str]
    states_first_seen: list[str]  # the queue's state cells when the page first showed them


def run_journey(browser: Browser, cloud: Cloud, shots: Shots | None = None) -> JourneyResult:
    shots = shots or Shots()
    page = browser.page

    browser.goto("/ui/login")
    shots.take(browser, "login")
    browser.log_in(cloud.server.admin_token, next_path="/ui/images")
    assert browser.path() == "/ui/images", browser.path()

    add_image_from_template(browser, cloud)
    shots.take(browser, "images")

    refuse_invalid_run(browser, cloud)
    shots.take(browser, "run-error")

    vm_ids = run_vms(browser, cloud)
    first_seen = watch_queue(browser, vm_ids, shots)

    console_of(browser, vm_ids[0])
    shots.take(browser, "console")

    results_of(browser, vm_ids[0])
    shots.take(browser, "vm")

    admin_pages(browser, cloud, shots)

    browser.phone()
    for path in [*PHONE_PAGES, f"/ui/vms/{vm_ids[0]}"]:
        browser.goto(path)
        expect(page.locator("h1")).to_be_visible()
        assert browser.horizontal_overflow() <= 0, f"{path} scrolls sideways at 375px"
        if path == "/ui/queue":
            shots.take(browser, "queue-phone")
    browser.desktop()
    assert browser.errors == [], browser.errors
    assert all(url.startswith(browser.base_url + "/") for url in browser.requests)
    return JourneyResult(vm_ids, first_seen)


def add_image_from_template(browser: Browser, cloud: Cloud) -> None:
    page = browser.page
    expect(page.locator("table#images")).to_be_visible()
    choose(page.get_by_label("Template", exact=True), TEMPLATE)
    page.get_by_label("New name", exact=True).fill(COPY)
    with page.expect_navigation():
        page.get_by_role("button", name="Add image").click()
    assert browser.path().startswith("/ui/images"), browser.path()
    expect(page.locator(f'#images tr[data-image-name="{COPY}"]')).to_be_visible()
    expect(page.get_by_role("status").first).to_be_visible()
    copies = cloud.admin.get("/api/v1/images", params={"name": COPY}).json()
    assert [image["name"] for image in copies] == [COPY]


def fill_run_form(browser: Browser, walltime: str) -> None:
    page = browser.page
    choose(page.get_by_label("Image", exact=True), COPY)
    page.locator('input[name="mode"][value="multi"]').check()
    page.get_by_label("Number of machines", exact=True).fill(str(COUNT))
    page.get_by_label("Cores", exact=True).fill("1")
    page.get_by_label("Memory (MiB)", exact=True).fill(MEMORY_MIB)
    page.get_by_label("Walltime", exact=True).fill(walltime)
    page.get_by_label("Name", exact=True).fill(VM_NAME)
    page.get_by_label("User data", exact=True).fill(JOB)


def refuse_invalid_run(browser: Browser, cloud: Cloud) -> None:
    """A Run form the server refuses: the reason on the page, the values kept, no VM made."""
    page = browser.page
    before = vm_ids_of(cloud)
    browser.goto("/ui/run")
    expect(page.locator("#quota")).not_to_be_empty()
    fill_run_form(browser, walltime=BAD_WALLTIME)
    with page.expect_navigation():
        page.get_by_role("button", name="Run", exact=True).click()
    error = page.locator("#form-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text(BAD_WALLTIME)  # it names what was wrong
    expect(page.get_by_label("Walltime", exact=True)).to_have_value(BAD_WALLTIME)
    expect(page.get_by_label("Number of machines", exact=True)).to_have_value(str(COUNT))
    assert vm_ids_of(cloud) == before


def run_vms(browser: Browser, cloud: Cloud) -> list[str]:
    """The Run form filled in right: the queue page with a notice, three new VMs."""
    page = browser.page
    before = vm_ids_of(cloud)
    fill_run_form(browser, walltime="10m")
    with page.expect_navigation():
        page.get_by_role("button", name="Run", exact=True).click()
    assert browser.path().startswith("/ui/queue"), browser.path()
    expect(page.get_by_role("status").first).to_be_visible()
    new = [vm_id for vm_id in vm_ids_of(cloud) if vm_id not in before]
    assert len(new) == COUNT, new
    return new


def watch_queue(browser: Browser, vm_ids: list[str], shots: Shots) -> list[str]:
    """The queue page, left alone: its state cells go to done without a reload."""
    page = browser.page
    page.evaluate("window.portalJourneyMarker = 'still the same page'")
    cells = [page.locator(f'#vms tr[data-vm-id="{vm_id}"] .state') for vm_id in vm_ids]
    first_seen = [cell.inner_text().strip() for cell in cells]
    assert first_seen != ["done"] * COUNT, "the VMs ended before the queue could show them"
    if shots.directory is not None:  # a picture of the queue while the VMs are live
        page.wait_for_function(LIVE_OR_ENDED, arg=vm_ids, timeout=FINISH_TIMEOUT_MS)
        shots.take(browser, "queue")
    for cell in cells:
        expect(cell).to_have_text("done", timeout=FINISH_TIMEOUT_MS)
    marker = page.evaluate("window.portalJourneyMarker")
    assert marker == "still the same page", "the queue page reloaded instead of updating"
    assert browser.path().startswith("/ui/queue")
    return first_seen


def console_of(browser: Browser, vm_id: str) -> None:
    page = browser.page
    row = page.locator(f'#vms tr[data-vm-id="{vm_id}"]')
    with page.expect_navigation():
        row.get_by_role("link", name="Console log").click()
    assert browser.path() == f"/ui/vms/{vm_id}/console", browser.path()
    log = page.locator("pre#console-log.console")
    expect(log).to_contain_text("gridvm-guest: ready")  # the guest booted...
    expect(log).to_contain_text(f"hello from the portal on {VM_NAME}-")  # ...and ran the job
    expect(log).to_contain_text("user-data exited with status 0")
    assert "\x1b" not in log.inner_text()  # the firmware's screen resets are not shown


def results_of(browser: Browser, vm_id: str) -> None:
    """The VM's page from its name in the queue: done after one run, and its results as a tar
    holding the file the job wrote."""
    page = browser.page
    browser.goto("/ui/queue")
    row = page.locator(f'#vms tr[data-vm-id="{vm_id}"]')
    with page.expect_navigation():
        row.locator("td.name a").click()
    assert browser.path() == f"/ui/vms/{vm_id}", browser.path()
    expect(page.locator("#vm-state")).to_have_text("done")
    expect(page.locator("#runs tbody tr")).to_have_count(1)
    with page.expect_download() as download:
        page.get_by_role("link", name="Download results").click()
    with tarfile.open(download.value.path()) as tar:
        names = {name.removeprefix("./") for name in tar.getnames()}
        assert "answer.txt" in names, names
        member = next(m for m in tar.getmembers() if m.name.removeprefix("./") == "answer.txt")
        answer = tar.extractfile(member)
        assert answer is not None and answer.read().decode().startswith(f"result of {VM_NAME}-")


def admin_pages(browser: Browser, cloud: Cloud, shots: Shots) -> None:
    page = browser.page
    browser.goto("/ui/admin/hosts")
    host = page.locator(f'#hosts tr[data-host="{cloud.agent.name}"]')
    expect(host).to_be_visible()
    expect(host.get_by_role("button", name="Disable")).to_be_visible()
    # The cache holds tiny's disk, kernel and initrd: each shown by its image's name.
    expect(host).to_contain_text("(kernel)")
    expect(host).to_contain_text("(initrd)")
    expect(host).not_to_contain_text("(no image)")
    shots.take(browser, "hosts")

    browser.goto("/ui/admin/groups")
    expect(page.locator("table#groups")).to_be_visible()
    chart = page.locator("svg#usage-chart")
    expect(chart).to_be_visible()
    expect(chart).to_have_attribute("role", "img")
    expect(chart).to_have_attribute("aria-label", NON_EMPTY)
    expect(chart.locator(":scope > title")).to_have_text(NON_EMPTY)  # the chart's own title
    shots.take(browser, "groups")


def choose(select: Locator, name: str) -> None:
    """Pick the option for ``name`` in a select (its value or its text may add a version)."""
    options: list[list[str]] = select.locator("option").evaluate_all(
        "options => options.map(o => [o.value, (o.textContent || '').trim()])"
    )
    for value, text in options:
        if name in _names(value) | _names(text):
            select.select_option(value=value)
            return
    raise AssertionError(f"no option for {name!r} among {options}")


def _names(label: str) -> set[str]:
    """``tiny-portal:1 (12 MiB)`` names ``tiny-portal``."""
    first = label.split()[0] if label.split() else ""
    return {label, first, first.split(":")[0]}


def vm_ids_of(cloud: Cloud) -> list[str]:
    return [vm["id"] for vm in cloud.admin.get("/api/v1/vms", params={"all": True}).json()]
