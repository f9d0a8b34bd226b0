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
    run_then_stop,
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
    assert buttons(page, vm["id"]) == ["Stop", "Extend", "Terminate"]
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


def vm_rows(page: httpx.Response) -> list[str]:
    return re.findall(r'<tr data-vm-id="([^"]+)"', page.text)


def pager(page: httpx.Response) -> str:
    found = re.search(r'<nav id="vms-pager".*?</nav>', page.text, re.S)
    assert found
    return " ".join(html.unescape(found.group(0)).split())


def test_the_queue_shows_fifty_vms_a_page_with_links_between_pages(
    portal: PortalClient, api: httpx.Client
) -> None:
    made = run(api, name="scan", count=55)["vms"]
    ids = [vm["id"] for vm in made]
    first = portal.get("/ui/queue")
    assert vm_rows(first) == ids[:50]
    assert "Page 1 of 2, 55 VMs" in pager(first)
    assert '<a href="/ui/queue?page=2" rel="next">Next</a>' in pager(first)
    assert "Previous" not in pager(first)
    second = portal.get("/ui/queue?page=2")
    assert vm_rows(second) == ids[50:]
    assert "Page 2 of 2, 55 VMs" in pager(second)
    assert '<a href="/ui/queue" rel="prev">Previous</a>' in pager(second)
    assert "Next" not in pager(second)
    # A page past the end shows the last one; the script polls the page shown, no more.
    assert vm_rows(portal.get("/ui/queue?page=7")) == ids[50:]
    assert 'data-page="2" data-page-size="50" data-total="55"' in second.text
    # An action from page 2 comes back to page 2.
    back = portal.post_form(f"/ui/vms/{ids[52]}/stop", {"back": "/ui/queue?page=2"})
    assert back.status_code == 303 and back.headers["location"] == "/ui/queue?page=2"


def test_the_show_filter_picks_vms_by_state_with_the_deployment_filter(
    portal: PortalClient, api: httpx.Client
) -> None:
    scan = run(api, name="scan", count=3)
    other = run(api, name="other")["vms"][0]
    ended = scan["vms"][0]
    assert api.post(f"/api/v1/vms/{ended['id']}/stop").status_code == 202  # cancelled
    page = portal.get("/ui/queue")
    assert re.search(r'<label for="show-filter">Show</label>\s*<select id="show-filter"', page.text)
    assert ">Waiting (pending)</option>" in page.text
    assert ">Active (starting/running/suspended/stopping)</option>" in page.text
    assert ">Ended (done/failed/cancelled/expired)</option>" in page.text
    assert vm_rows(portal.get("/ui/queue?show=ended")) == [ended["id"]]
    waiting = portal.get("/ui/queue?show=waiting")
    assert vm_rows(waiting) == [vm["id"] for vm in scan["vms"][1:]] + [other["id"]]
    assert "Page 1 of 1, 3 VMs" in pager(waiting)
    assert '<option value="waiting" selected>' in waiting.text
    assert 'data-states="pending"' in waiting.text  # what queue.js asks the API for
    mine = portal.get(f"/ui/queue?show=waiting&deployment={scan['id']}")
    assert vm_rows(mine) == [vm["id"] for vm in scan["vms"][1:]]
    nothing = portal.get("/ui/queue?show=active")
    assert vm_rows(nothing) == [] and "No VMs to show with this filter." in nothing.text
    assert "Page 1 of 1, 0 VMs" in pager(nothing)
    refused = portal.get("/ui/queue?show=sleeping")
    assert refused.status_code == 422
    assert "'sleeping' is not one of the queue's filters" in html.unescape(refused.text)


def test_a_running_vm_is_suspended_and_resumed_from_the_queue(
    server: RunningServer, portal: PortalClient, api: httpx.Client
) -> None:
    agent = register_host(server)
    vm = run(api, name="dev", mode="single")["vms"][0]
    assigned(agent, vm["id"])
    sync(agent, [report(vm, "running")])
    assert buttons(portal.get("/ui/queue"), vm["id"]) == ["Stop", "Suspend", "Extend", "Terminate"]
    back = "/ui/queue?show=active"
    done = portal.post_form(f"/ui/vms/{vm['id']}/suspend", {"back": back})
    assert done.status_code == 303 and done.headers["location"] == back
    assert f"VM dev ({vm['id']}) is being suspended." in html.unescape(portal.get(back).text)
    sync(agent, [report(vm, "suspended")])
    page = portal.get(back)
    assert "state=suspended" in (row(page, vm["id"]) or "")
    assert buttons(page, vm["id"]) == ["Stop", "Resume", "Extend", "Terminate"]
    assert portal.post_form(f"/ui/vms/{vm['id']}/resume", {}).status_code == 303
    sync(agent, [report(vm, "running")])
    assert state(api, vm["id"]) == "running"
    # Suspending it twice over: the service's reason, on the queue, with its status.
    sync(agent, [report(vm, "suspended")])
    refused = portal.post_form(f"/ui/vms/{vm['id']}/suspend", {})
    assert refused.status_code == 409
    assert "only a running VM can be suspended" in html.unescape(refused.text)


def test_the_walltime_is_extended_by_an_amount_and_a_bad_one_is_kept_with_why(
    portal: PortalClient, api: httpx.Client
) -> None:
    vm = run(api, name="job", walltime_s=600)["vms"][0]
    page = portal.get("/ui/queue")
    field = f'<label for="extend-{vm["id"]}" class="visually-hidden">Extend the walltime of job'
    assert field in page.text
    extended = portal.post_form(f"/ui/vms/{vm['id']}/extend", {"by": "1h", "back": "/ui/queue"})
    assert extended.status_code == 303
    assert api.get(f"/api/v1/vms/{vm['id']}").json()["walltime_s"] == 600 + 3600
    assert "may now run for 1h10m in all." in html.unescape(portal.get("/ui/queue").text)
    bad = portal.post_form(f"/ui/vms/{vm['id']}/extend", {"by": "soon"})
    assert bad.status_code == 422
    assert "'soon' is not a duration" in html.unescape(bad.text)
    assert f'id="extend-{vm["id"]}" name="by" value="soon"' in bad.text  # kept to correct
    too_long = portal.post_form(f"/ui/vms/{vm['id']}/extend", {"by": "999d"})
    assert too_long.status_code == 422
    assert "beyond the site's limit" in html.unescape(too_long.text)
    assert api.get(f"/api/v1/vms/{vm['id']}").json()["walltime_s"] == 4200  # unchanged
    portal.post_form(f"/ui/vms/{vm['id']}/stop", {})
    assert "Extend" not in buttons(portal.get("/ui/queue"), vm["id"])  # ended: no lease


def test_a_stopped_single_mode_vm_is_saved_as_an_image_from_the_queue(
    server: RunningServer, portal: PortalClient, api: httpx.Client
) -> None:
    agent = register_host(server)
    vm = run(api, name="dev", mode="single")["vms"][0]
    run_then_stop(api, agent, vm)
    page = portal.get("/ui/queue")
    assert buttons(page, vm["id"]) == ["Start", "Save", "Terminate"]
    empty = portal.post_form(f"/ui/vms/{vm['id']}/save", {"name": ""})
    assert empty.status_code == 422 and "Name the image to save the VM as." in empty.text
    bad = portal.post_form(f"/ui/vms/{vm['id']}/save", {"name": "no good!"})
    assert bad.status_code == 422
    assert f'id="save-{vm["id"]}" name="name" value="no good!"' in html.unescape(bad.text)
    saved = portal.post_form(f"/ui/vms/{vm['id']}/save", {"name": "dev-image"})
    assert saved.status_code == 303
    assert api.get(f"/api/v1/vms/{vm['id']}").json()["saving_as"] == "dev-image"
    page = portal.get("/ui/queue")
    assert "is being saved as image dev-image" in html.unescape(page.text)
    assert buttons(page, vm["id"]) == ["Start", "Terminate"]  # one save at a time
    # A multi-mode VM is never saved: no button.
    other = run(api, name="job")["vms"][0]
    portal.post_form(f"/ui/vms/{other['id']}/stop", {})
    assert "Save" not in buttons(portal.get("/ui/queue"), other["id"])
