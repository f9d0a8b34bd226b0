"""VM-to-VM across hosts, the server's side: agents report their VMs' site addresses and
their uplink address, and each vm_to_vm VM's assignment names its deployment's peers on
other hosts (and nothing else), kept current as peers come and go."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.helpers import agent_token, eventually, host_registration, make_qcow2, upload
from tests.servers import RunningServer

UPLINK = {"host1": "192.0.2.1", "host2": "192.0.2.2"}


@pytest.fixture
def admin(server: RunningServer, tmp_path: Path) -> httpx.Client:
    client = server.client()
    upload(client, make_qcow2(tmp_path / "a.qcow2"), "base")
    return client


def _register(server: RunningServer, name: str) -> httpx.Client:
    agent = server.client(agent_token(server))
    response = agent.post("/api/v1/agent/register", json=host_registration(name))
    assert response.status_code == 200, response.text
    return agent


def _sync(
    agent: httpx.Client, host: str, reports: list[dict[str, Any]] | None = None, **extra: Any
) -> dict[str, Any]:
    body = {"host": host, "uplink_address": UPLINK[host], "vms": reports or [], **extra}
    response = agent.post("/api/v1/agent/sync", json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def _run(admin: httpx.Client, count: int, **fields: Any) -> list[dict[str, Any]]:
    created = admin.post("/api/v1/vms", json={"image": "base", "count": count, **fields})
    assert created.status_code == 201, created.text
    vms: list[dict[str, Any]] = created.json()["vms"]
    return vms


def _peers(answer: dict[str, Any], vm_id: str) -> list[dict[str, str]]:
    a = next(a for a in answer["assignments"] if a["vm_id"] == vm_id)
    peers: list[dict[str, str]] = a["remote_peers"]
    return peers


def test_a_vm_to_vm_assignment_names_its_peers_on_other_hosts_only(
    server: RunningServer, admin: httpx.Client
) -> None:
    agents = {name: _register(server, name) for name in UPLINK}
    pair = _run(admin, 2, vm_to_vm=True, affinity="different-hosts", memory_mb=256)
    other = _run(admin, 2, vm_to_vm=True, affinity="different-hosts", memory_mb=256)
    plain = _run(admin, 2, affinity="different-hosts", memory_mb=256)
    everyone = pair + other + plain

    def placed() -> dict[str, str] | None:
        hosts = {v["id"]: admin.get(f"/api/v1/vms/{v['id']}").json()["host"] for v in everyone}
        return hosts if all(hosts.values()) else None

    host_of: dict[str, str] = eventually(placed)
    assert {host_of[v["id"]] for v in pair} == {"host1", "host2"}
    # Each agent runs its VMs and says which address it gave each (10.64.<host>.x).
    address: dict[str, str] = {}
    for host, agent in agents.items():
        mine = [v for v in everyone if host_of[v["id"]] == host]
        for n, v in enumerate(mine, start=2):
            address[v["id"]] = f"10.64.{host[-1]}.{n}"
        _sync(agent, host, [_report(v, "running", address[v["id"]]) for v in mine])

    answers = {host: _sync(agent, host) for host, agent in agents.items()}
    for group in (pair, other):
        for v in group:
            (peer,) = [p for p in group if p is not v]
            assert _peers(answers[host_of[v["id"]]], v["id"]) == [
                {"address": address[peer["id"]], "via": UPLINK[host_of[peer["id"]]]}
            ]
    for v in plain:  # their deployment did not ask for vm_to_vm
        assert _peers(answers[host_of[v["id"]]], v["id"]) == []

    # The pair's member on host2 ends: host1's agent hears of it at once (its long poll is
    # woken), and its member no longer has a remote peer.
    a = next(v for v in pair if host_of[v["id"]] == "host1")
    b = next(v for v in pair if host_of[v["id"]] == "host2")
    generation = answers["host1"]["generation"]
    _sync(agents["host2"], "host2", [_report(b, "ended", None)])
    began = time.monotonic()
    woken = _sync(agents["host1"], "host1", since=generation, wait_s=20)
    assert time.monotonic() - began < 10
    assert _peers(woken, a["id"]) == []


def test_a_peer_without_a_reported_address_or_uplink_is_not_sent(
    server: RunningServer, admin: httpx.Client
) -> None:
    agents = {name: _register(server, name) for name in UPLINK}
    pair = _run(admin, 2, vm_to_vm=True, affinity="different-hosts", memory_mb=256)

    def placed() -> dict[str, str] | None:
        hosts = {v["id"]: admin.get(f"/api/v1/vms/{v['id']}").json()["host"] for v in pair}
        return hosts if all(hosts.values()) else None

    host_of: dict[str, str] = eventually(placed)
    a = next(v for v in pair if host_of[v["id"]] == "host1")
    b = next(v for v in pair if host_of[v["id"]] == "host2")
    _sync(agents["host1"], "host1", [_report(a, "running", "10.64.1.2")])
    # host2's agent runs b but reports no site address (user-mode networking).
    _sync(agents["host2"], "host2", [_report(b, "running", None)])
    assert _peers(_sync(agents["host1"], "host1"), a["id"]) == []
    # An address that is not IPv4 is not passed on either.
    _sync(agents["host2"], "host2", [_report(b, "running", "10.64.2.2; rm -rf /")])
    assert _peers(_sync(agents["host1"], "host1"), a["id"]) == []
    _sync(agents["host2"], "host2", [_report(b, "running", "10.64.2.2")])
    assert _peers(_sync(agents["host1"], "host1"), a["id"]) == [
        {"address": "10.64.2.2", "via": "192.0.2.2"}
    ]
    # The user sees the address the host gave the VM (not one its guest claims).
    assert admin.get(f"/api/v1/vms/{b['id']}").json()["site_address"] == "10.64.2.2"


def _report(vm: dict[str, Any], state: str, site_address: str | None) -> dict[str, Any]:
    cause = "poweroff" if state == "ended" else None
    return {
        "vm_id": vm["id"],
        "attempt": 1,
        "state": state,
        "cause": cause,
        "site_address": site_address,
    }
