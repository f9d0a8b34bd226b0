"""The Queue page: VMs with their state and what they wait for, the buttons that change
them, deployments, other users' VMs kept out, and a VM's console log."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.helpers import (
    assigned,
    eventually,
    make_qcow2,
    make_user,
    register_host,
    report,
    sync,
    upload,
)
from tests.api.portal.conftest import PortalClient
from tests.servers import RunningServer


@pytest.fixture
def api(server: RunningServer, tmp_path: Path) -> httpx.Client:
    """The admin's API client, with a public image "base" to run."""
    admin = server.client()
    made = upload(admin, make_qcow2(tmp_path / "a.qcow2"), "base", visibility="public")
    assert made.status_code == 201, made.text
    return admin


def run(client: httpx.Client, **body: Any) -> dict[str, Any]:
    made = client.post("/api/v1/vms", json={"image": "base", "memory_mb": 128, **body})
    assert made.status_code == 201, made.text
    deployment: dict[str, Any] = made.json()
    return deployment


def row(page: httpx.Response, vm_id: str) -> str | None:
    """The VM's table row as text with its cells' classes: 'state=pending reason=...'."""
    found = re.search(rf'<tr data-vm-id="{vm_id}".*?</tr>', page.text, re.S)
    if not found:
        return None
    cells = re.findall(r'<td class="([^"]+)">(.*?)</td>', found.group(0), re.S)
    return " ".join(
        f"{cls.split()[-1]}={' '.join(html.unescape(re.sub(r'<[^>]+>', ' ', text)).split())}"
        for cls, text in cells
    )


def buttons(page: httpx.Response, vm_id: str) -> list[str]:
    found = re.search(rf'<tr data-vm-id="{vm_id}".*?</tr>', page.text, re.S)
    assert found
    return re.findall(r'<button type="submit" class="[^"]*">([^<]+)</button>', found.group(0))


def state(api: httpx.Client, vm_id: str) -> str:
    vm_state: str = api.get(f"/api/v1/vms/{vm_id}").json()["state"]
    return vm_state


def test_a_pending_vm_shows_what_it_waits_for(portal: PortalClient, api: httpx.Client) -> None:
    vm = run(api, name="job")["vms"][0]
    # No host registered: the scheduler says so (waited for through the API).
    reason = eventually(
        lambda: "no host" in (api.get(f"/api/v1/vms/{vm['id']}").json()["pending_reason"] or "")
    )
    assert reason
    page = portal.get("/ui/queue")
    assert page.status_code == 200 and '<table id="vms"' in page.text
    shown = row(page, vm["id"])
    assert shown is not None
    pending_reason = api.get(f"/api/v1/vms/{vm['id']}").json()["pending_reason"]
    assert "state=pending" in shown and f"reason={pending_reason}" in shown
    assert "image=base:1 cores=1 memory=128 MiB" in shown
    assert buttons(page, vm["id"]) == ["Stop", "Terminate"]
    assert f'href="/ui/vms/{vm["id"]}/console">Console log<' in page.text


def test_stop_then_terminate_a_running_vm_from_the_queue(
    server: RunningServer, portal: PortalClient, api: httpx.Client
) -> None:
    agent = register_host(server)
    vm = run(api, name="dev", mode="single")["vms"][0]
    assigned(agent, vm["id"])
    sync(agent, [report(vm, "running")])
    page = portal.get("/ui/queue")
    assert "state=running reason= host=node1" in (row(page, vm["id"]) or "")
    stopped = portal.post_form(f"/ui/vms/{vm['id']}/stop", {"back": "/ui/queue"})
    assert stopped.status_code == 303 and stopped.headers["location"] == "/ui/queue"
    assert state(api, vm["id"]) == "stopping"
    page = portal.get("/ui/queue")
    assert f"VM dev ({vm['id']}) is stopping." in html.unescape(page.text)
    assert buttons(page, vm["id"]) == ["Terminate"]
    ended = portal.post_form(f"/ui/vms/{vm['id']}/terminate", {"back": "/ui/queue"})
    assert ended.status_code == 303
    assert api.get(f"/api/v1/vms/{vm['id']}").json()["exit_reason"] == "terminated by admin"


def test_a_pending_vm_stopped_is_cancelled_and_can_be_redeployed(
    portal: PortalClient, api: httpx.Client
) -> None:
    vm = run(api)["vms"][0]
    assert portal.post_form(f"/ui/vms/{vm['id']}/stop", {}).status_code == 303
    assert state(api, vm["id"]) == "cancelled"
    page = portal.get("/ui/queue")
    assert "state=cancelled" in (row(page, vm["id"]) or "")
    assert "exit=cancelled by admin before it started" in (row(page, vm["id"]) or "")
    assert buttons(page, vm["id"]) == ["Redeploy"]
    assert portal.post_form(f"/ui/vms/{vm['id']}/redeploy", {}).status_code == 303
    again = api.get(f"/api/v1/vms/{vm['id']}").json()
    assert (again["state"], again["attempt"]) == ("pending", 2)


def test_a_refused_action_shows_why_on_the_queue(portal: PortalClient, api: httpx.Client) -> None:
    vm = run(api)["vms"][0]
    portal.post_form(f"/ui/vms/{vm['id']}/terminate", {})
    again = portal.post_form(f"/ui/vms/{vm['id']}/terminate", {"back": "/ui/queue?all=1"})
    assert again.status_code == 409
    assert f"VM {vm['id']} has ended already (cancelled)." in html.unescape(again.text)
    assert 'id="form-error"' in again.text and '<table id="vms"' in again.text


def test_a_deployment_is_summarised_filtered_and_cancelled(
    portal: PortalClient, api: httpx.Client
) -> None:
    scan = run(api, name="scan", count=3)
    other = run(api, name="other")
    page = portal.get("/ui/queue")
    assert f'<tr data-deployment-id="{scan["id"]}"' in page.text
    assert "3 pending" in page.text
    only = portal.get(f"/ui/queue?deployment={scan['id']}")
    assert all(f'data-vm-id="{v["id"]}"' in only.text for v in scan["vms"])
    assert f'data-vm-id="{other["vms"][0]["id"]}"' not in only.text
    back = f"/ui/queue?deployment={scan['id']}"
    cancelled = portal.post_form(f"/ui/deployments/{scan['id']}/cancel", {"back": back})
    assert cancelled.status_code == 303 and cancelled.headers["location"] == back
    states = api.get(f"/api/v1/deployments/{scan['id']}").json()["states"]
    assert states == {"cancelled": 3}
    assert state(api, other["vms"][0]["id"]) == "pending"


def test_another_users_vms_are_not_shown_nor_reachable(
    server: RunningServer, portal: PortalClient, api: httpx.Client
) -> None:
    alice = make_user(server, "alice", group="physics")
    bob = make_user(server, "bob", group="physics")
    hers = run(alice, name="hers")["vms"][0]
    as_bob = PortalClient(server, bob.headers["authorization"].removeprefix("Bearer "))
    assert hers["id"] not in as_bob.get("/ui/queue").text
    assert 'id="all-users"' not in as_bob.get("/ui/queue").text  # only admins see everyone's
    assert hers["id"] not in as_bob.get("/ui/queue?all=1").text
    console = as_bob.get(f"/ui/vms/{hers['id']}/console")
    assert console.status_code == 404 and f"no VM '{hers['id']}'" in html.unescape(console.text)
    refused = as_bob.post_form(f"/ui/vms/{hers['id']}/terminate", {})
    assert refused.status_code == 404
    assert state(alice, hers["id"]) == "pending"
    # The admin sees it only when asking for all users.
    assert hers["id"] not in portal.get("/ui/queue").text
    everyone = portal.get("/ui/queue?all=1")
    assert "owner=alice" in (row(everyone, hers["id"]) or "")


def test_the_buttons_need_the_csrf_token(portal: PortalClient, api: httpx.Client) -> None:
    vm = run(api)["vms"][0]
    refused = portal.http.post(f"/ui/vms/{vm['id']}/terminate", data={"back": "/ui/queue"})
    assert refused.status_code == 403
    refused = portal.http.post(f"/ui/deployments/{vm['deployment']}/cancel", data={})
    assert refused.status_code == 403
    assert state(api, vm["id"]) == "pending"


def test_the_console_page_shows_the_log_escaped(
    server: RunningServer, portal: PortalClient, api: httpx.Client
) -> None:
    agent = register_host(server)
    vm = run(api, name="job")["vms"][0]
    assigned(agent, vm["id"])
    sync(agent, [report(vm, "running")])
    written = agent.put(
        f"/api/v1/agent/vms/{vm['id']}/console",
        params={"offset": 0},
        content=b"booting\nhello <b>world</b>\n",
    )
    assert written.status_code == 200, written.text
    page = portal.get(f"/ui/vms/{vm['id']}/console")
    assert page.status_code == 200
    found = re.search(r'<pre id="console-log" class="console"[^>]*>(.*?)</pre>', page.text, re.S)
    assert found and found.group(1) == "booting\nhello &lt;b&gt;world&lt;/b&gt;\n"
    assert 'data-live="true"' in page.text and 'data-offset="27"' in page.text
    assert f'href="/ui/vms/{vm["id"]}/console">Refresh<' in page.text


def test_a_failed_job_shows_its_exit_and_its_deployment_redeploys_the_failed(
    server: RunningServer, portal: PortalClient, api: httpx.Client
) -> None:
    agent = register_host(server)
    made = run(api, name="scan", params=[{"A": "1"}, {"A": "2"}])
    ok, bad = made["vms"]
    for vm in (ok, bad):
        assigned(agent, vm["id"])
    sync(
        agent,
        [
            {**report(ok, "ended", "poweroff"), "exit_status": 0},
            {**report(bad, "ended", "poweroff"), "exit_status": 1},
        ],
    )
    page = portal.get("/ui/queue")
    assert "state=failed" in (row(page, bad["id"]) or "")
    assert "exit=the job exited with status 1 actions=" in (row(page, bad["id"]) or "")
    assert "1 done" in page.text and "1 failed" in page.text
    summary = re.search(rf'<tr data-deployment-id="{made["id"]}".*?</tr>', page.text, re.S)
    assert summary and ">Redeploy failed</button>" in summary.group(0)
    assert ">Cancel</button>" not in summary.group(0)  # nothing left to cancel
    again = portal.post_form(f"/ui/deployments/{made['id']}/redeploy-failed", {})
    assert again.status_code == 303
    assert "starts its failed and expired VMs over" in html.unescape(portal.get("/ui/queue").text)
    assert api.get(f"/api/v1/vms/{bad['id']}").json()["attempt"] == 2
    assert api.get(f"/api/v1/vms/{ok['id']}").json()["state"] == "done"
