"""The site's zone whitelists changed at run time (/api/v1/site/egress): admins add and
remove entries, every host's agent gets them at its next sync (a waiting sync is woken),
and reports what it applied, so hosts and VMs say whether the change is in force.

The agent's side is played by hand (as tests/api/test_egress.py does): what matters is what
the server sends and what it makes of the agent's report.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gridvm.common.config import SiteLimits
from tests.api.conftest import BACKENDS, _database_url
from tests.api.helpers import assigned, make_qcow2, make_user, register_host, sync, upload
from tests.servers import RunningServer, run_server

CONFIG = {"trusted": ("10.0.0.53:53/udp",), "dmz": ("10.0.0.53:53/udp",)}


@pytest.fixture(params=BACKENDS)
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningServer]:
    limits = SiteLimits(zone_egress=CONFIG)
    with run_server(
        tmp_path / "server", limits=limits, database_url=_database_url(request)
    ) as running:
        yield running


@pytest.fixture
def admin(site: RunningServer) -> httpx.Client:
    return site.client()


def add(client: httpx.Client, zone: str, entry: str, **extra: Any) -> httpx.Response:
    return client.post("/api/v1/site/egress", json={"zone": zone, "entry": entry, **extra})


def agent_sync(agent: httpx.Client, applied: str | None = None, **extra: Any) -> dict[str, Any]:
    body = {"host": "node1", "vms": [], "site_egress_applied": applied, **extra}
    response = agent.post("/api/v1/agent/sync", json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_an_added_entry_reaches_the_agents_and_is_listed_with_its_source(
    site: RunningServer, admin: httpx.Client
) -> None:
    agent = register_host(site)
    before = agent_sync(agent)
    assert before["zone_egress"] == {"trusted": ["10.0.0.53:53/udp"], "dmz": ["10.0.0.53:53/udp"]}

    r = add(admin, "dmz", " 192.0.2.10:443 ", note="licence server")
    assert r.status_code == 201, r.text
    rule = r.json()
    assert (rule["zone"], rule["entry"], rule["source"]) == ("dmz", "192.0.2.10:443", "admin")
    assert (rule["note"], rule["created_by"]) == ("licence server", "admin")
    after = agent_sync(agent)
    assert after["zone_egress"] == {
        "trusted": ["10.0.0.53:53/udp"],
        "dmz": ["10.0.0.53:53/udp", "192.0.2.10:443"],
    }
    assert after["zone_egress_digest"] != before["zone_egress_digest"]

    listing = admin.get("/api/v1/site/egress").json()
    assert [(r["zone"], r["entry"], r["source"], r["id"]) for r in listing["rules"]] == [
        ("trusted", "10.0.0.53:53/udp", "config", None),
        ("dmz", "10.0.0.53:53/udp", "config", None),
        ("dmz", "192.0.2.10:443", "admin", rule["id"]),
    ]
    assert listing["digest"] == after["zone_egress_digest"]

    removed = admin.delete(f"/api/v1/site/egress/{rule['id']}")
    assert removed.status_code == 200, removed.text
    again = agent_sync(agent)
    assert again["zone_egress"] == before["zone_egress"]
    assert again["zone_egress_digest"] == before["zone_egress_digest"]


def test_a_waiting_sync_is_woken_by_a_change(site: RunningServer, admin: httpx.Client) -> None:
    agent = register_host(site)
    generation = agent_sync(agent)["generation"]
    answers: list[dict[str, Any]] = []
    waiting = threading.Thread(
        target=lambda: answers.append(agent_sync(agent, since=generation, wait_s=20))
    )
    waiting.start()
    time.sleep(0.5)  # the sync is waiting for news now
    assert add(admin, "trusted", "192.0.2.20:8443").status_code == 201
    waiting.join(timeout=15)
    # Answered before the end of its 20-second wait: woken by the change.
    assert answers, "the waiting sync was not answered"
    assert answers[0]["zone_egress"]["trusted"] == ["10.0.0.53:53/udp", "192.0.2.20:8443"]


def test_hosts_and_vms_say_whether_the_current_whitelist_is_applied(
    site: RunningServer, admin: httpx.Client, tmp_path: Path
) -> None:
    upload(admin, make_qcow2(tmp_path / "a.qcow2"), "base")
    agent = register_host(site)
    created = admin.post("/api/v1/vms", json={"image": "base", "zone": "dmz"})
    assert created.status_code == 201, created.text
    vm = created.json()["vms"][0]
    assigned(agent, vm["id"])
    host = admin.get("/api/v1/hosts/node1").json()
    assert (host["site_egress_applied"], host["site_egress_current"]) == (None, None)

    digest = agent_sync(agent)["zone_egress_digest"]
    agent_sync(agent, applied=digest)
    host = admin.get("/api/v1/hosts/node1").json()
    assert (host["site_egress_applied"], host["site_egress_current"]) == (digest, True)
    shown = admin.get(f"/api/v1/vms/{vm['id']}").json()
    assert shown["zone_egress"] == ["10.0.0.53:53/udp"]
    assert shown["zone_egress_applied"] is True

    assert add(admin, "dmz", "192.0.2.30:443").status_code == 201
    host = admin.get("/api/v1/hosts").json()[0]
    assert (host["site_egress_applied"], host["site_egress_current"]) == (digest, False)
    shown = admin.get(f"/api/v1/vms/{vm['id']}").json()
    assert shown["zone_egress"] == ["10.0.0.53:53/udp", "192.0.2.30:443"]
    assert shown["zone_egress_applied"] is False

    new = agent_sync(agent, applied=digest)["zone_egress_digest"]
    agent_sync(agent, applied=new)
    assert admin.get("/api/v1/hosts/node1").json()["site_egress_current"] is True
    assert admin.get(f"/api/v1/vms/{vm['id']}").json()["zone_egress_applied"] is True


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"zone": "dmz", "entry": "0.0.0.0/0:443"}, 422, "opens the whole internet"),
        ({"zone": "dmz", "entry": "192.0.2.10"}, 422, "not of the form ADDRESS:PORT"),
        ({"zone": "dmz", "entry": "192.0.2.10:0"}, 422, "port"),
        ({"zone": "lab", "entry": "192.0.2.10:443"}, 422, "zone"),
        ({"zone": "dmz", "entry": "10.0.0.53:53/udp"}, 409, "from the server's config"),
    ],
)
def test_bad_entries_are_refused_and_nothing_changes(
    admin: httpx.Client, body: dict[str, str], status: int, message: str
) -> None:
    before = admin.get("/api/v1/site/egress").json()
    r = admin.post("/api/v1/site/egress", json=body)
    assert r.status_code == status, r.text
    assert message in r.text
    assert admin.get("/api/v1/site/egress").json() == before


def test_the_same_entry_twice_is_a_conflict_and_a_config_entry_has_no_id_to_remove(
    admin: httpx.Client,
) -> None:
    assert add(admin, "dmz", "192.0.2.10:443").status_code == 201
    twice = add(admin, "dmz", "192.0.2.10:443")
    assert twice.status_code == 409 and "already" in twice.json()["message"]
    # The same entry in another zone is another rule.
    assert add(admin, "trusted", "192.0.2.10:443").status_code == 201
    missing = admin.delete("/api/v1/site/egress/egr-000000000000")
    assert missing.status_code == 404
    assert "config" in missing.json()["hint"]


def test_a_wide_entry_needs_the_sites_permission(tmp_path: Path) -> None:
    limits = SiteLimits(egress_allow_wide=True)
    with run_server(tmp_path / "server", limits=limits) as running:
        r = add(running.client(), "dmz", "0.0.0.0/0:443")
        assert r.status_code == 201, r.text


def test_only_admins_see_or_change_the_site_whitelist(
    site: RunningServer, admin: httpx.Client
) -> None:
    rule = add(admin, "dmz", "192.0.2.10:443").json()
    alice = make_user(site, "alice")
    assert alice.get("/api/v1/site/egress").status_code == 403
    assert add(alice, "dmz", "192.0.2.11:443").status_code == 403
    assert alice.delete(f"/api/v1/site/egress/{rule['id']}").status_code == 403
    entries = [r["entry"] for r in admin.get("/api/v1/site/egress").json()["rules"]]
    assert entries == ["10.0.0.53:53/udp", "10.0.0.53:53/udp", "192.0.2.10:443"]


def test_an_agent_cannot_report_a_malformed_digest(site: RunningServer) -> None:
    agent = register_host(site)
    r = agent.post("/api/v1/agent/sync", json={"host": "node1", "site_egress_applied": "../../etc"})
    assert r.status_code == 422
    assert sync(agent)["zone_egress_digest"]
