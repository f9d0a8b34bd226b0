"""Egress whitelists through the API: a VM's own (validated, names resolved), the site's per
zone, shown by vm show, and sent to the agent with the VM's zone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gridvm.common.config import SiteLimits
from tests.api.helpers import assigned, make_qcow2, register_host, sync, upload
from tests.servers import RunningServer, run_server

SITE = {"dmz": ("10.0.0.53:53/udp",), "trusted": ("10.0.0.0/16:443",)}


@pytest.fixture
def site(tmp_path: Path) -> Iterator[RunningServer]:
    with run_server(tmp_path / "server", limits=SiteLimits(zone_egress=SITE)) as running:
        yield running


@pytest.fixture
def admin(site: RunningServer, tmp_path: Path) -> httpx.Client:
    client = site.client()
    upload(client, make_qcow2(tmp_path / "a.qcow2"), "base")
    return client


def test_a_vm_whitelist_is_kept_resolved_shown_and_sent_to_the_agent(
    site: RunningServer, admin: httpx.Client
) -> None:
    agent = register_host(site)
    created = admin.post(
        "/api/v1/vms",
        json={
            "image": "base",
            "allow_egress": ["192.0.2.10:443", "localhost:8080", "198.51.100.0/24:53/udp"],
            "vm_to_vm": True,
        },
    )
    assert created.status_code == 201, created.text
    vm = created.json()["vms"][0]
    shown = admin.get(f"/api/v1/vms/{vm['id']}").json()
    assert shown["egress"] == ["127.0.0.1:8080", "192.0.2.10:443", "198.51.100.0/24:53/udp"]
    zone = shown["zone"]
    assert shown["zone_egress"] == list(SITE[zone])
    a = assigned(agent, vm["id"])
    assert (a["zone"], a["egress"]) == (zone, shown["egress"])
    assert (a["deployment_id"], a["vm_to_vm"]) == (vm["deployment"], True)
    assert sync(agent)["zone_egress"] == {z: list(e) for z, e in SITE.items()}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("0.0.0.0/0:443", "opens the whole internet"),
        ("no-such-host.invalid:80", "has no IPv4 address"),
        ("192.0.2.10", "not of the form ADDRESS:PORT"),
        ("192.0.2.10:70000", "port"),
    ],
)
def test_bad_entries_are_refused_and_nothing_is_created(
    admin: httpx.Client, entry: str, message: str
) -> None:
    r = admin.post("/api/v1/vms", json={"image": "base", "allow_egress": [entry]})
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "invalid_input" and message in r.json()["message"]
    assert admin.get("/api/v1/vms").json() == []


def test_the_site_may_allow_wide_entries(tmp_path: Path) -> None:
    with run_server(tmp_path / "server", limits=SiteLimits(egress_allow_wide=True)) as running:
        client = running.client()
        upload(client, make_qcow2(tmp_path / "a.qcow2"), "base")
        r = client.post("/api/v1/vms", json={"image": "base", "allow_egress": ["0.0.0.0/0:443"]})
        assert r.status_code == 201, r.text
        assert client.get(f"/api/v1/vms/{r.json()['vms'][0]['id']}").json()["egress"] == [
            "0.0.0.0/0:443"
        ]
