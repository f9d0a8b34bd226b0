"""A VM's page (/ui/vms/ID): what `gridvm vm show` shows, its runs and network rules, the
queue's buttons coming back to the page, and its results to download. The VM's host and
guest are played by hand through the agent and guest APIs (no QEMU)."""

from __future__ import annotations

import html
import io
import re
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gridvm.common.config import SiteLimits
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
from tests.servers import RunningServer, run_server

SITE = {"dmz": ("10.0.0.53:53/udp",), "trusted": ("10.0.0.0/16:443",)}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    """A server whose zones allow some outbound connections (the site's egress rules)."""
    with run_server(tmp_path / "server", limits=SiteLimits(zone_egress=SITE)) as running:
        yield running


@pytest.fixture
def api(server: RunningServer, tmp_path: Path) -> httpx.Client:
    """The admin's API client, with a public image "base" to run."""
    admin = server.client()
    made = upload(admin, make_qcow2(tmp_path / "a.qcow2"), "base", visibility="public")
    assert made.status_code == 201, made.text
    return admin


def text_of(page: httpx.Response) -> str:
    """The page as a reader sees it: tags gone, entities decoded, spaces collapsed."""
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", page.text, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


def field(page: httpx.Response, name: str) -> str:
    """The value of one detail ("State", "Host", ...) as text."""
    found = re.search(
        rf"<dt>(?:<label[^>]*>)?{name}(?:</label>)?</dt>\s*<dd[^>]*>(.*?)</dd>", page.text, re.S
    )
    assert found, f"no {name} on the page"
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", found.group(1))).split())


def table_rows(page: httpx.Response, table_id: str) -> list[str]:
    found = re.search(rf'<table id="{table_id}".*?<tbody>(.*?)</tbody>', page.text, re.S)
    assert found, f"no table {table_id}"
    return [
        " ".join(html.unescape(re.sub(r"<[^>]+>", " ", row)).split())
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", found.group(1), re.S)
    ]


def buttons(page: httpx.Response) -> list[str]:
    found = re.search(r'<div id="vm-actions".*?</div>', page.text, re.S)
    assert found
    return re.findall(r'<button type="submit" class="[^"]*">([^<]+)</button>', found.group(0))


def results_tar() -> bytes:
    """What an agent sends: a tar of the job's $GRIDVM_OUTPUT."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        data = b"mean=4.2\n"
        member = tarfile.TarInfo("answer.txt")
        member.size = len(data)
        tar.addfile(member, io.BytesIO(data))
    return out.getvalue()


def test_the_page_shows_the_vm_its_rules_runs_and_results_and_actions_come_back_to_it(
    server: RunningServer, portal: PortalClient, api: httpx.Client
) -> None:
    agent = register_host(server)
    made = api.post(
        "/api/v1/vms",
        json={
            "image": "base",
            "name": "sim",
            "mode": "single",
            "vcpus": 2,
            "memory_mb": 128,
            "walltime_s": 7200,
            "allow_egress": ["192.0.2.10:443"],
        },
    )
    assert made.status_code == 201, made.text
    vm: dict[str, Any] = made.json()["vms"][0]
    page_path = f"/ui/vms/{vm['id']}"
    token = assigned(agent, vm["id"])["guest_token"]
    sync(agent, [report(vm, "running")])
    guest = server.client(token)
    assert guest.post("/api/v1/guest/ready", json={"ip": "10.1.2.3"}).status_code == 200
    progress = guest.post("/api/v1/guest/progress", json={"percent": 55.5, "message": "step 2"})
    assert progress.status_code == 204
    assert guest.put("/api/v1/guest/data/result.path", content=b"/out/x").status_code == 204

    page = portal.get(page_path)
    assert page.status_code == 200
    assert "<h1>VM sim</h1>" in page.text and vm["id"] in page.text
    assert field(page, "State") == "running" and field(page, "Host") == "node1"
    assert field(page, "Image") == "base:1" and field(page, "Mode").startswith("single")
    assert (field(page, "Cores"), field(page, "Memory")) == ("2", "128 MiB")
    assert field(page, "Walltime") == "2h" and field(page, "Expires").endswith("UTC")
    assert field(page, "Guest").startswith("ready since") and "address 10.1.2.3" in field(
        page, "Guest"
    )
    assert field(page, "Progress") == "55.5% step 2"
    assert '<progress id="vm-progress" max="100" value="55.5">' in page.text
    assert field(page, "Zone") == "dmz" and field(page, "Volumes") == "none attached"
    assert field(page, "Deployment") == f"{vm['deployment']} (VM #0)"
    assert f'href="/ui/queue?deployment={vm["deployment"]}"' in page.text
    assert table_rows(page, "published") == ["result.path /out/x"]
    # The effective rules, as vm show lists them: the VM's own, then its zone's.
    assert table_rows(page, "rules") == [
        "192.0.2.10:443 this VM",
        "10.0.0.53:53/udp site, dmz zone",
    ]
    assert f'href="/ui/vms/{vm["id"]}/console">Console log<' in page.text
    assert buttons(page) == ["Stop", "Suspend", "Extend", "Terminate"]
    assert 'data-live="true"' in page.text and "/ui/static/vm.js" in page.text
    assert "Download results" not in page.text
    assert "No results yet" in text_of(page)

    # Stop and start again from the page: each comes back to it, saying what happened.
    stopped = portal.post_form(f"/ui/vms/{vm['id']}/stop", {"back": page_path})
    assert stopped.status_code == 303 and stopped.headers["location"] == page_path
    assert f"VM sim ({vm['id']}) is stopping." in text_of(portal.get(page_path))
    sync(agent, [report(vm, "stopped", "stopped")])
    assert buttons(portal.get(page_path)) == ["Start", "Save", "Terminate"]
    started = portal.post_form(f"/ui/vms/{vm['id']}/start", {"back": page_path})
    assert started.status_code == 303 and started.headers["location"] == page_path
    eventually(lambda: assigned(agent, vm["id"])["desired"] == "running")
    sync(agent, [{**report(vm, "running"), "boot": 2}])
    # The job leaves its results, then the VM powers off.
    stored = agent.put(f"/api/v1/agent/vms/{vm['id']}/results", content=results_tar())
    assert stored.status_code == 200, stored.text
    sync(agent, [{**report(vm, "ended", "poweroff"), "boot": 2, "exit_status": 0}])

    page = portal.get(page_path)
    assert field(page, "State") == "done" and field(page, "Exit status") == "0"
    runs = table_rows(page, "runs")
    assert len(runs) == 2
    assert runs[0].startswith("1 node1") and runs[0].endswith("stopped")
    assert runs[1].startswith("2 node1") and runs[1].endswith("done")
    assert buttons(page) == ["Redeploy"] and 'data-live="false"' in page.text
    assert f'<a id="results-link" href="/ui/vms/{vm["id"]}/results" download>' in page.text
    got = portal.get(f"/ui/vms/{vm['id']}/results")
    assert got.status_code == 200 and got.headers["content-type"] == "application/x-tar"
    with tarfile.open(fileobj=io.BytesIO(got.content)) as tar:
        answer = tar.extractfile("answer.txt")
        assert answer is not None and answer.read() == b"mean=4.2\n"


def test_a_refused_action_from_the_page_shows_why_on_the_page(
    portal: PortalClient, api: httpx.Client
) -> None:
    vm = api.post("/api/v1/vms", json={"image": "base", "name": "wait"}).json()["vms"][0]
    page_path = f"/ui/vms/{vm['id']}"
    page = portal.get(page_path)
    assert field(page, "State") == "pending" and field(page, "Host") == "-"
    reason = eventually(lambda: api.get(f"/api/v1/vms/{vm['id']}").json()["pending_reason"])
    assert field(portal.get(page_path), "Waiting for") == reason
    assert table_rows(portal.get(page_path), "runs") == ["It has not run yet."]
    refused = portal.post_form(f"/ui/vms/{vm['id']}/extend", {"by": "soon", "back": page_path})
    assert refused.status_code == 422
    error = re.search(r'id="form-error">(.*?)</div>', refused.text, re.S)
    assert "<h1>VM wait</h1>" in refused.text and error and "'soon'" in html.unescape(error[1])
    assert f'id="extend-{vm["id"]}" name="by" value="soon"' in refused.text  # kept
    # A pending VM stopped is cancelled: no results, and the page says so.
    assert portal.post_form(f"/ui/vms/{vm['id']}/stop", {"back": page_path}).status_code == 303
    page = portal.get(page_path)
    assert field(page, "State") == "cancelled" and field(page, "Exit status") == "-"
    assert field(page, "Exit reason") == "cancelled by admin before it started"
    assert "None: the job left no results." in text_of(page)
    assert portal.get(f"/ui/vms/{vm['id']}/results").status_code == 404


def test_back_goes_only_to_the_page_of_the_vm_acted_on(
    portal: PortalClient, api: httpx.Client
) -> None:
    one, other = api.post("/api/v1/vms", json={"image": "base", "count": 2}).json()["vms"]
    for back in (f"/ui/vms/{other['id']}", "https://evil.example/", f"/ui/vms/{one['id']}/x"):
        done = portal.post_form(f"/ui/vms/{one['id']}/stop", {"back": back})
        assert done.status_code == 303 and done.headers["location"] == "/ui/queue"
        api.post(f"/api/v1/vms/{one['id']}/redeploy").raise_for_status()
    # A deployment's action never goes to a VM's page.
    cancelled = portal.post_form(
        f"/ui/deployments/{one['deployment']}/cancel", {"back": f"/ui/vms/{one['id']}"}
    )
    assert cancelled.status_code == 303 and cancelled.headers["location"] == "/ui/queue"


def test_the_queue_links_each_vm_to_its_page(portal: PortalClient, api: httpx.Client) -> None:
    vm = api.post("/api/v1/vms", json={"image": "base", "name": "job"}).json()["vms"][0]
    queue = portal.get("/ui/queue")
    assert f'<td class="name"><a href="/ui/vms/{vm["id"]}">job</a>' in queue.text


def test_another_users_vm_is_not_found_and_the_admin_sees_all(
    server: RunningServer, portal: PortalClient, api: httpx.Client
) -> None:
    alice = make_user(server, "alice")
    bob = make_user(server, "bob")
    hers = alice.post("/api/v1/vms", json={"image": "base", "name": "hers"})
    assert hers.status_code == 201, hers.text
    vm = hers.json()["vms"][0]
    as_bob = PortalClient(server, bob.headers["authorization"].removeprefix("Bearer "))
    for path in (f"/ui/vms/{vm['id']}", f"/ui/vms/{vm['id']}/results"):
        page = as_bob.get(path)
        assert page.status_code == 404 and f"no VM '{vm['id']}'" in html.unescape(page.text)
    assert "That did not work" in as_bob.get("/ui/vms/nosuchvm").text
    refused = as_bob.post_form(f"/ui/vms/{vm['id']}/terminate", {"back": f"/ui/vms/{vm['id']}"})
    assert refused.status_code == 404
    assert alice.get(f"/api/v1/vms/{vm['id']}").json()["state"] == "pending"
    shown = portal.get(f"/ui/vms/{vm['id']}")
    assert shown.status_code == 200 and field(shown, "Owner") == "alice (physics)"


def test_the_page_gives_its_script_what_it_follows_the_vm_with(
    server: RunningServer, portal: PortalClient, api: httpx.Client
) -> None:
    """vm.js starts from the buttons the page shows (data-actions) and follows the VM through
    the REST API with the portal's session cookie: the VM (state, results, published data)
    and its runs, the same the page shows; the queue and the page share vm_buttons.js."""
    agent = register_host(server)
    made = api.post("/api/v1/vms", json={"image": "base", "name": "live", "mode": "single"})
    vm: dict[str, Any] = made.json()["vms"][0]
    page_path = f"/ui/vms/{vm['id']}"
    assigned(agent, vm["id"])
    sync(agent, [report(vm, "running")])

    page = portal.get(page_path)
    assert 'data-actions="stop|suspend|extend|terminate"' in page.text
    assert buttons(page) == ["Stop", "Suspend", "Extend", "Terminate"]
    for shown in ("vm-walltime", "vm-started", "vm-expires", "vm-ended", "vm-published"):
        assert f'id="{shown}"' in page.text
    for html_page in (page, portal.get("/ui/queue")):
        scripts = re.findall(r'<script src="/ui/static/([a-z_]+\.js)"', html_page.text)
        assert scripts[-2] == "vm_buttons.js" and scripts[-1] in ("vm.js", "queue.js")
    script = portal.get("/ui/static/vm_buttons.js")
    assert script.status_code == 200 and "function actionsOf(vm)" in script.text

    # What the script asks for, with the page's cookie (no token): the VM and its runs.
    live = portal.get(f"/api/v1/vms/{vm['id']}").json()
    assert (live["state"], live["mode"], live["results_bytes"]) == ("running", "single", None)
    runs = portal.get(f"/api/v1/vms/{vm['id']}/runs").json()
    assert [(run["number"], run["host"], run["end_state"]) for run in runs] == [(1, "node1", None)]
    sync(agent, [report(vm, "stopped", "stopped")])
    stopped = portal.get(page_path)
    assert 'data-actions="start|save|terminate"' in stopped.text
    assert portal.get(f"/api/v1/vms/{vm['id']}/runs").json()[0]["end_state"] == "stopped"
    assert table_rows(stopped, "runs")[0].endswith("stopped")
