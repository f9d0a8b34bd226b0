"""Admin pages through HTTP: hosts (capacity, use, cache, enable/disable) and groups (fair
share, quotas, members, usage chart and table); other users get the 403 page."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.api.helpers import (
    agent_token,
    assigned,
    host_registration,
    make_qcow2,
    make_user,
    report,
    sync,
    upload,
)
from tests.api.portal.conftest import PortalClient
from tests.servers import RunningServer


def row(html: str, attribute: str, value: str) -> str:
    found = re.search(rf'<tr {attribute}="{re.escape(value)}">(.*?)</tr>', html, re.S)
    assert found, f"no row {attribute}={value!r} in the page"
    return found.group(1)


def text_of(html: str) -> str:
    """The words a user reads (tags dropped, spaces squeezed)."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def register(server: RunningServer, name: str, **fields: object) -> httpx.Client:
    agent = server.client(agent_token(server))
    response = agent.post(
        "/api/v1/agent/register", json=host_registration(name, 16, 32768, **fields)
    )
    assert response.status_code == 200, response.text
    return agent


def test_hosts_are_listed_with_capacity_use_labels_and_cached_images(
    server: RunningServer, portal: PortalClient, tmp_path: Path
) -> None:
    admin = server.client()
    image = upload(admin, make_qcow2(tmp_path / "a.qcow2"), "base").json()
    agent = register(server, "node1", labels={"rack": "r7"}, zones=["dmz"])
    load = {"load_1m": 1.5, "load_5m": 0.75, "load_15m": 0.25, "memory_available_mb": 2048}
    digest = agent.post("/api/v1/agent/sync", json={"host": "node1"}).json()["zone_egress_digest"]
    cached = agent.post(
        "/api/v1/agent/sync",
        json={
            "host": "node1",
            "cached_images": [image["digest"]],
            "load": load,
            "site_egress_applied": digest,  # the agent applied the site's zone whitelists
        },
    )
    assert cached.status_code == 200, cached.text
    register(server, "node2")

    page = portal.get("/ui/admin/hosts")
    assert page.status_code == 200
    assert 'id="hosts"' in page.text
    node1 = text_of(row(page.text, "data-host", "node1"))
    assert "online" in node1 and "enabled" in node1
    assert "0 / 16" in node1  # cores used / cores
    assert "0 B / 32 GiB" in node1 and "10 GiB" in node1
    assert "rack=r7" in node1 and "dmz" in node1 and "trusted" not in node1
    assert f"admin/base:v{image['version']}" in node1  # the cache shown by image name
    assert "UTC" in node1  # last heartbeat
    assert "Disable" in node1
    assert "1.50 / 0.75 / 0.25" in node1 and "2 GiB free" in node1  # the load reported
    assert admin.get("/api/v1/hosts/node1").json()["load"] == load
    assert "whitelist current" in node1  # the agent applied the site's zone whitelists
    assert "not reported" in text_of(row(page.text, "data-host", "node2"))
    assert "whitelist" not in text_of(row(page.text, "data-host", "node2"))
    admin.post("/api/v1/site/egress", json={"zone": "dmz", "entry": "192.0.2.10:443"})
    node1 = text_of(row(portal.get("/ui/admin/hosts").text, "data-host", "node1"))
    assert "whitelist behind (next sync)" in node1
    assert "none" in text_of(row(page.text, "data-host", "node2"))  # nothing cached


def test_disable_and_enable_change_the_host_through_the_api(
    server: RunningServer, portal: PortalClient
) -> None:
    register(server, "node1")
    api = server.client()

    disabled = portal.post_form("/ui/admin/hosts/node1/disable", {})
    assert disabled.status_code == 303 and disabled.headers["location"] == "/ui/admin/hosts"
    assert api.get("/api/v1/hosts/node1").json()["state"] == "disabled"
    page = portal.get("/ui/admin/hosts")
    assert "Host node1 is disabled" in page.text
    node1 = row(page.text, "data-host", "node1")
    assert ">Enable</button>" in node1 and ">Disable</button>" not in node1

    enabled = portal.post_form("/ui/admin/hosts/node1/enable", {})
    assert enabled.status_code == 303
    assert api.get("/api/v1/hosts/node1").json()["state"] == "enabled"
    assert "Host node1 is enabled" in portal.get("/ui/admin/hosts").text


def test_disabling_an_unknown_host_shows_the_error_on_the_page(
    server: RunningServer, portal: PortalClient
) -> None:
    register(server, "node1")
    missing = portal.post_form("/ui/admin/hosts/node9/disable", {})
    assert missing.status_code == 404
    assert 'id="form-error"' in missing.text and "No host &#39;node9&#39;" in missing.text
    assert 'data-host="node1"' in missing.text  # the page is still there


def test_a_form_without_the_csrf_token_changes_nothing(
    server: RunningServer, portal: PortalClient
) -> None:
    register(server, "node1")
    refused = portal.http.post("/ui/admin/hosts/node1/disable", data={})
    assert refused.status_code == 403
    assert server.client().get("/api/v1/hosts/node1").json()["state"] == "enabled"


def test_groups_page_shows_shares_quotas_members_and_the_usage_chart(
    server: RunningServer, portal: PortalClient, tmp_path: Path
) -> None:
    admin = server.client()
    upload(admin, make_qcow2(tmp_path / "a.qcow2"), "base").raise_for_status()
    admin.patch("/api/v1/images/base", json={"visibility": "public"})
    assert admin.post("/api/v1/groups", json={"name": "physics", "shares": 60}).status_code == 201
    alice = make_user(server, "alice", group="physics")
    make_user(server, "bob", group="physics")
    make_user(server, "carol", group="bio")
    quota = admin.put("/api/v1/quotas/group/physics", json={"cores": 32, "vms": 10})
    assert quota.status_code == 200, quota.text
    agent = register(server, "node1")
    made = alice.post("/api/v1/vms", json={"image": "base", "vcpus": 2})
    assert made.status_code == 201, made.text
    (vm,) = made.json()["vms"]
    assigned(agent, vm["id"])
    sync(agent, [report(vm, "running")])

    page = portal.get("/ui/admin/groups")
    assert page.status_code == 200
    physics = text_of(row(page.text, "data-group", "physics"))
    assert physics.startswith("physics 2 60")  # name, members, shares
    assert "1 (2)" in physics  # running VMs (cores)
    assert "cores 2 / 32" in physics and "VMs 1 / 10" in physics
    assert "no quota" in text_of(row(page.text, "data-group", "bio"))

    chart = re.search(r'<svg id="usage-chart".*?</svg>', page.text, re.S)
    assert chart, "no usage chart"
    assert 'role="img"' in chart.group(0) and "<title>" in chart.group(0)
    assert 'aria-label="Core-hours per group per day, last 7 days. Totals: physics' in (
        chart.group(0)
    )
    assert 'data-series="physics"' in chart.group(0)
    assert 'data-series="bio"' not in chart.group(0)  # no use, no series
    usage_table = re.search(r'<table id="usage">.*?</table>', page.text, re.S)
    assert usage_table and "physics" in usage_table.group(0)
    assert len(re.findall(r"<tr>\s*<th scope=\"row\">\d{4}-", usage_table.group(0))) == 7


def test_the_range_picks_hour_or_day_buckets_and_bad_ranges_are_refused(
    portal: PortalClient,
) -> None:
    hourly = portal.get("/ui/admin/groups", params={"days": "1"})
    assert hourly.status_code == 200
    assert "Core-hours per group per hour, last 1 day" in hourly.text
    monthly = portal.get("/ui/admin/groups", params={"days": "30"})
    assert "Core-hours per group per day, last 30 day" in monthly.text
    for bad in ("0", "400", "lots"):
        refused = portal.get("/ui/admin/groups", params={"days": bad})
        assert refused.status_code == 422, bad
        assert "days must be" in refused.text


def test_other_users_get_the_forbidden_page(server: RunningServer, portal: PortalClient) -> None:
    register(server, "node1")
    alice = make_user(server, "alice")
    token = alice.headers["authorization"].removeprefix("Bearer ")
    browser = PortalClient(server, token)
    for path in ("/ui/admin/hosts", "/ui/admin/groups"):
        page = browser.get(path)
        assert page.status_code == 403, path
        assert "this needs the admin role" in page.text
    refused = browser.post_form("/ui/admin/hosts/node1/disable", {})
    assert refused.status_code == 403
    assert server.client().get("/api/v1/hosts/node1").json()["state"] == "enabled"
    assert "/ui/admin/hosts" not in browser.get("/ui/account").text  # no admin links
