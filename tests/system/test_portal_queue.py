"""The Queue page's buttons in headless Chromium: they act through the REST API without a
reload, say what happened (or why not), and the row follows the VM's new state. The VMs
wait for a host label no host has, so nothing boots: the test takes seconds."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.system.cloud import Cloud
from tests.system.portal_browser import Browser

pytestmark = pytest.mark.system

NOWHERE = "rack = nowhere"  # no host has this label: the VMs stay pending
SLEEPER = "#!/bin/sh\necho sleeping\nsleep 600\n"


@pytest.mark.timeout(120)
def test_queue_buttons_act_without_a_reload_and_the_row_follows(
    browser: Browser, portal_cloud: Cloud
) -> None:
    job, other = portal_cloud.run(name="waits", count=2, walltime_s=600, selector=NOWHERE)
    browser.log_in(portal_cloud.server.admin_token, next_path="/ui/queue?show=waiting")
    page = browser.page
    page.evaluate("window.portalJourneyMarker = 'still the same page'")
    row = page.locator(f'#vms tr[data-vm-id="{job["id"]}"]')
    expect(row.locator(".state")).to_have_text("pending")

    # Extend: an amount the page cannot read is refused with why; a good one is applied.
    field = row.get_by_label("Extend the walltime of waits-0 by")
    field.fill("soon")
    row.get_by_role("button", name="Extend").click()
    expect(page.locator("#live-status")).to_contain_text("'soon' is not a duration")
    field.fill("999d")  # the API refuses it: its reason is shown as an error
    row.get_by_role("button", name="Extend").click()
    expect(page.locator("#live-status.error")).to_contain_text("beyond the site's limit")
    field.fill("30m")
    row.get_by_role("button", name="Extend").click()
    expect(page.locator("#live-status")).to_contain_text("may now run for 40m in all.")
    assert portal_cloud.vm(job["id"])["walltime_s"] == 600 + 1800

    # Stop a pending VM: it is cancelled, and with the "Waiting" filter it leaves the page.
    row.get_by_role("button", name="Stop").click()
    expect(page.locator("#live-status")).to_contain_text(f"VM waits-0 ({job['id']}) is stopping.")
    expect(row).to_have_count(0)
    expect(page.locator("#vms-page-info")).to_have_text("Page 1 of 1, 1 VM")
    assert portal_cloud.vm(job["id"])["state"] == "cancelled"

    # On the unfiltered page its row shows it ended, with the button that applies now.
    browser.goto("/ui/queue")
    page.evaluate("window.portalJourneyMarker = 'still the same page'")
    row = page.locator(f'#vms tr[data-vm-id="{job["id"]}"]')
    expect(row.locator(".state")).to_have_text("cancelled")
    row.get_by_role("button", name="Redeploy").click()
    expect(row.locator(".state")).to_have_text("pending")
    expect(row.get_by_role("button", name="Stop")).to_be_visible()
    expect(row.get_by_role("button", name="Redeploy")).to_have_count(0)
    # Terminate asks first: declined, nothing happens; accepted, the row changes in place.
    questions: list[str] = []
    page.once("dialog", lambda dialog: (questions.append(dialog.message), dialog.dismiss()))
    other_row = page.locator(f'#vms tr[data-vm-id="{other["id"]}"]')
    other_row.get_by_role("button", name="Terminate").click()
    page.wait_for_timeout(500)
    assert questions == ["Terminate waits-1? It ends now and its disk is deleted."]
    assert portal_cloud.vm(other["id"])["state"] == "pending"
    page.once("dialog", lambda dialog: dialog.accept())
    other_row.get_by_role("button", name="Terminate").click()
    expect(other_row.locator(".state")).to_have_text("cancelled")

    assert page.evaluate("window.portalJourneyMarker") == "still the same page"
    assert browser.path() == "/ui/queue"
    polls = [call for call in browser.api_calls if call.startswith("GET /api/v1/vms?")]
    assert polls and all("limit=50" in call and "offset=0" in call for call in polls)
    posted = {call.split("?")[0] for call in browser.api_calls if call.startswith("POST")}
    assert f"POST /api/v1/vms/{job['id']}/extend" in posted
    assert f"POST /api/v1/vms/{other['id']}/terminate" in posted
    assert browser.errors == []


@pytest.mark.timeout(120)
def test_a_vm_page_follows_its_vm_and_its_buttons_act_in_place(
    browser: Browser, portal_cloud: Cloud
) -> None:
    (vm,) = portal_cloud.run(name="paged", walltime_s=600, selector=NOWHERE)
    browser.log_in(portal_cloud.server.admin_token, next_path="/ui/queue?show=waiting")
    page = browser.page
    row = page.locator(f'#vms tr[data-vm-id="{vm["id"]}"]')
    with page.expect_navigation():
        row.get_by_role("link", name=vm["name"]).click()
    assert browser.path() == f"/ui/vms/{vm['id']}"
    expect(page.locator("#vm-state")).to_have_text("pending")
    expect(page.get_by_role("link", name="Console log")).to_be_visible()

    # A button on the page acts in place (its plain form comes back to the page without
    # JavaScript: tests/api/portal/test_vm_page.py), saying what it did.
    page.evaluate("window.portalJourneyMarker = 'still the same page'")
    page.get_by_label("Extend the walltime of paged by").fill("30m")
    page.get_by_role("button", name="Extend").click()
    expect(page.locator("#live-status")).to_contain_text("may now run for 40m in all.")
    expect(page.locator("#vm-walltime")).to_have_text("40m")

    # Ended elsewhere: the page follows without a reload, then says it ended.
    portal_cloud.admin.post(f"/api/v1/vms/{vm['id']}/stop").raise_for_status()
    expect(page.locator("#vm-state")).to_have_text("cancelled", timeout=6_000)
    expect(page.locator("#vm-exit-reason")).to_contain_text("cancelled")
    expect(page.locator("#vm-live")).to_contain_text("The VM has ended (cancelled)")
    assert page.evaluate("window.portalJourneyMarker") == "still the same page"

    browser.phone()
    assert browser.horizontal_overflow() <= 0, "the VM page scrolls sideways at 375px"
    browser.desktop()
    assert f"GET /api/v1/vms/{vm['id']}" in browser.api_calls
    assert browser.errors == []


def action_buttons(page: Page) -> list[str]:
    return [text.strip() for text in page.locator("#vm-actions button").all_text_contents()]


@pytest.mark.timeout(120)
def test_a_vm_pages_buttons_act_in_place_and_follow_its_state_and_runs(
    browser: Browser, portal_cloud: Cloud
) -> None:
    (vm,) = portal_cloud.run(name="kept", mode="single", walltime_s=600, user_data=SLEEPER)
    portal_cloud.wait_console(vm["id"], "sleeping")
    browser.log_in(portal_cloud.server.admin_token, next_path=f"/ui/vms/{vm['id']}")
    page = browser.page
    page.evaluate("window.portalJourneyMarker = 'still the same page'")
    expect(page.locator("#vm-state")).to_have_text("running")
    assert action_buttons(page) == ["Stop", "Suspend", "Extend", "Terminate"]
    expect(page.locator("#runs tbody tr")).to_have_count(1)

    # Stop through the API: the page says so, and its buttons become the stopped VM's.
    page.get_by_role("button", name="Stop").click()
    expect(page.locator("#live-status")).to_contain_text(f"VM kept ({vm['id']}) is stopping.")
    expect(page.locator("#vm-state")).to_have_text("stopped", timeout=30_000)
    expect(page.locator("#vm-actions button")).to_have_text(["Start", "Save", "Terminate"])
    expect(page.locator('#runs tr[data-run="1"]')).to_contain_text("stopped")

    # Start again: a second run appears in the Runs table.
    page.get_by_role("button", name="Start").click()
    expect(page.locator('#runs tr[data-run="2"]')).to_contain_text("running", timeout=30_000)
    expect(page.locator("#vm-actions button")).to_have_text(
        ["Stop", "Suspend", "Extend", "Terminate"]
    )
    assert page.evaluate("window.portalJourneyMarker") == "still the same page"
    assert f"POST /api/v1/vms/{vm['id']}/stop" in browser.api_calls
    assert f"GET /api/v1/vms/{vm['id']}/runs" in browser.api_calls
    assert browser.errors == []
    portal_cloud.admin.post(f"/api/v1/vms/{vm['id']}/terminate")


@pytest.mark.timeout(120)
def test_a_vm_page_shows_published_data_results_and_redeploy_when_its_vm_ends(
    browser: Browser, portal_cloud: Cloud
) -> None:
    # The job ends by itself (results are written when a job exits; a stopped one leaves none).
    job = (
        '#!/bin/sh\necho 42 > "$GRIDVM_OUTPUT/answer.txt"\ngridvm-guest publish answer 42\n'
        "echo published\nsleep 1\n"
    )
    browser.log_in(portal_cloud.server.admin_token, next_path="/ui/queue")
    (vm,) = portal_cloud.run(name="answers", walltime_s=600, user_data=job)
    browser.goto(f"/ui/vms/{vm['id']}")
    page = browser.page
    page.evaluate("window.portalJourneyMarker = 'still the same page'")
    expect(page.locator("#no-results")).to_contain_text("No results yet")
    expect(page.locator("#no-published")).to_be_visible()

    # It ends without the page doing anything: the ended VM's button, its published data,
    # the results link and its final run appear; then the page stops asking.
    expect(page.locator("#vm-actions button")).to_have_text(["Redeploy"], timeout=60_000)
    expect(page.locator("#vm-state")).to_have_text("done")
    expect(page.locator("#published tbody td")).to_have_text(["answer", "42"])
    expect(page.locator("#results-link")).to_have_text("Download results")
    expect(page.locator('#runs tr[data-run="1"]')).to_contain_text("done")
    expect(page.locator("#vm-live")).to_contain_text("The VM has ended (done)")
    calls = len(browser.api_calls)
    page.wait_for_timeout(2_500)
    assert len(browser.api_calls) == calls, "the page still asks about an ended VM"
    # Redeploy from the page: it follows the VM again.
    page.get_by_role("button", name="Redeploy").click()
    expect(page.locator("#live-status")).to_contain_text(f"VM answers ({vm['id']}) starts over.")
    expect(page.locator("#vm-actions button").first).to_have_text("Stop")
    expect(page.locator('#runs tr[data-run="2"]')).to_have_count(1, timeout=30_000)
    assert page.evaluate("window.portalJourneyMarker") == "still the same page"
    assert browser.errors == []
    portal_cloud.admin.post(f"/api/v1/vms/{vm['id']}/terminate")
