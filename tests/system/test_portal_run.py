"""A job run from the portal's Run form on a real guest, and its console page."""

from __future__ import annotations

import html
import re

import pytest

from tests.api.portal.conftest import PortalClient
from tests.system.cloud import Cloud

pytestmark = pytest.mark.system


def test_a_job_run_from_the_portal_ends_done_and_its_console_page_shows_its_output(
    cloud: Cloud,
) -> None:
    portal = PortalClient(cloud.server, cloud.server.admin_token)
    sent = portal.post_form(
        "/ui/run",
        {
            "image": "tiny",
            "mode": "multi",
            "count": "1",
            "cores": "1",
            "memory": "192",
            "walltime": "10m",
            "vm_name": "hello",
            # A textarea sends CRLF line ends: the shebang must still work.
            "user_data": "#!/bin/sh\r\necho portal-job-$((6*7))\r\n",
        },
    )
    assert sent.status_code == 303, sent.text
    (vm,) = cloud.admin.get("/api/v1/vms").json()
    assert cloud.wait(vm["id"], {"done", "failed"})["state"] == "done"
    cloud.wait_console(vm["id"], "portal-job-42")
    page = portal.get(f"/ui/vms/{vm['id']}/console")
    found = re.search(r'<pre id="console-log" class="console"([^>]*)>(.*?)</pre>', page.text, re.S)
    assert found, page.text
    assert "portal-job-42" in html.unescape(found.group(2))
    assert 'data-live="false"' in found.group(1)  # ended: the page's script does not poll
    queue = portal.get("/ui/queue")
    assert "Redeploy" in queue.text and f'data-vm-id="{vm["id"]}"' in queue.text
