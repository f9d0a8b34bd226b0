"""Issue 7's journey through the portal in headless Chromium, on real tiny VMs: needs the
images, run/queue and admin pages (ELEMENT CONTRACT in the portal notes)."""

from __future__ import annotations

import pytest

from gridvm.schemas.vms import VmState
from tests.system.cloud import Cloud
from tests.system.portal_browser import Browser
from tests.system.portal_journey import COPY, COUNT, run_journey

pytestmark = pytest.mark.system


@pytest.mark.timeout(900)
def test_a_user_adds_an_image_runs_three_vms_and_watches_them_finish_in_the_browser(
    browser: Browser, portal_cloud: Cloud
) -> None:
    result = run_journey(browser, portal_cloud)
    ended = [portal_cloud.vm(vm_id) for vm_id in result.vm_ids]
    assert [vm["state"] for vm in ended] == ["done"] * COUNT
    assert {vm["image_name"] for vm in ended} == {COPY}
    # The queue first showed each in one of the API's states (then updated itself to done).
    assert set(result.states_first_seen) <= {state.value for state in VmState}
