"""GET /api/v1/vms/ID/runs: every run of a VM is recorded, and usage history counts them all.

The agent's side is played by hand (as tests/api/test_agent_protocol.py does): what matters
is the states the server is told, not a real guest.
"""

from __future__ import annotations

import time
from datetime import datetime
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
from tests.servers import RunningServer, run_server


@pytest.fixture
def admin(server: RunningServer, tmp_path: Path) -> httpx.Client:
    client = server.client()
    upload(client, make_qcow2(tmp_path / "a.qcow2"), "base").raise_for_status()
    client.patch("/api/v1/images/base", json={"visibility": "public"})
    return client


def runs(client: httpx.Client, vm: dict[str, Any]) -> list[dict[str, Any]]:
    response = client.get(f"/api/v1/vms/{vm['id']}/runs")
    assert response.status_code == 200, response.text
    body: list[dict[str, Any]] = response.json()
    return body


def seconds(run: dict[str, Any]) -> float:
    started = datetime.fromisoformat(run["started_at"])
    ended = datetime.fromisoformat(run["ended_at"])
    return (ended - started).total_seconds()


def test_a_vm_stopped_and_started_again_has_two_runs_and_usage_counts_both(
    server: RunningServer, admin: httpx.Client
) -> None:
    alice = make_user(server, "alice", group="physics")
    agent = register_host(server)
    vm = alice.post("/api/v1/vms", json={"image": "base", "mode": "single", "vcpus": 2}).json()[
        "vms"
    ][0]
    assigned(agent, vm["id"])
    sync(agent, [report(vm, "running")])
    assert [(r["number"], r["end_state"], r["ended_at"]) for r in runs(alice, vm)] == [
        (1, None, None)
    ]
    time.sleep(0.6)
    alice.post(f"/api/v1/vms/{vm['id']}/stop")
    sync(agent, [report(vm, "stopped", "stopped")])
    alice.post(f"/api/v1/vms/{vm['id']}/start").raise_for_status()
    eventually(lambda: assigned(agent, vm["id"])["desired"] == "running")
    sync(agent, [{**report(vm, "running"), "boot": 2}])
    time.sleep(0.3)
    sync(agent, [{**report(vm, "ended", "poweroff"), "boot": 2}])

    both = runs(alice, vm)
    assert [(r["number"], r["host"], r["vcpus"], r["end_state"]) for r in both] == [
        (1, "node1", 2, "stopped"),
        (2, "node1", 2, "done"),
    ]
    assert both[0]["ended_at"] <= both[1]["started_at"]
    assert seconds(both[0]) >= 0.6 and seconds(both[1]) >= 0.3
    shown = alice.get(f"/api/v1/vms/{vm['id']}").json()
    assert (shown["state"], shown["runs"]) == ("done", 2)
    # The VM row keeps only the latest run's times; the usage history counts both runs.
    assert shown["started_at"] == both[1]["started_at"]
    usage = admin.get("/api/v1/usage", params={"days": 1}).json()
    physics = next(s for s in usage["series"] if s["group"] == "physics")
    expected = 2 * (seconds(both[0]) + seconds(both[1])) / 3600
    assert sum(physics["core_hours"]) == pytest.approx(expected, rel=1e-3)


def test_redeploy_of_a_failed_vm_begins_a_second_run(
    server: RunningServer, admin: httpx.Client
) -> None:
    agent = register_host(server)
    vm = admin.post("/api/v1/vms", json={"image": "base"}).json()["vms"][0]
    assigned(agent, vm["id"])
    sync(agent, [report(vm, "running")])
    sync(agent, [report(vm, "ended", "crashed")])
    assert admin.get(f"/api/v1/vms/{vm['id']}").json()["state"] == "failed"
    admin.post(f"/api/v1/vms/{vm['id']}/redeploy").raise_for_status()
    assert eventually(lambda: assigned(agent, vm["id"])["attempt"] == 2)
    sync(agent, [report(vm, "running", attempt=2)])

    first, second = runs(admin, vm)
    assert (first["end_state"], second["end_state"], second["ended_at"]) == ("failed", None, None)
    assert first["ended_at"] is not None and second["duration_s"] >= 0
    assert admin.get(f"/api/v1/vms/{vm['id']}").json()["runs"] == 2


def test_redeploy_of_a_running_vm_ends_its_run_there(
    server: RunningServer, admin: httpx.Client
) -> None:
    agent = register_host(server)
    vm = admin.post("/api/v1/vms", json={"image": "base"}).json()["vms"][0]
    assigned(agent, vm["id"])
    sync(agent, [report(vm, "running")])
    admin.post(f"/api/v1/vms/{vm['id']}/redeploy").raise_for_status()
    (only,) = runs(admin, vm)
    assert only["end_state"] == "redeployed" and only["ended_at"] is not None
    # A late report about the discarded attempt opens nothing.
    sync(agent, [report(vm, "running", attempt=1)])
    assert len(runs(admin, vm)) == 1


def test_walltime_expiry_and_terminate_close_the_run(
    server: RunningServer, admin: httpx.Client
) -> None:
    agent = register_host(server)
    expiring = admin.post("/api/v1/vms", json={"image": "base", "walltime_s": 1}).json()["vms"][0]
    ended = admin.post("/api/v1/vms", json={"image": "base"}).json()["vms"][0]
    assigned(agent, expiring["id"])
    assigned(agent, ended["id"])
    sync(agent, [report(expiring, "running"), report(ended, "running")])
    eventually(lambda: assigned(agent, expiring["id"])["desired"] == "stopped", timeout=10)
    # Asked to stop, it still runs (and holds its cores) until its host says it ended.
    assert runs(admin, expiring)[0]["ended_at"] is None
    sync(agent, [report(expiring, "ended", "stopped")])
    admin.post(f"/api/v1/vms/{ended['id']}/terminate").raise_for_status()
    sync(agent, [report(ended, "deleted", "killed")])

    assert [r["end_state"] for r in runs(admin, expiring)] == ["expired"]
    assert [r["end_state"] for r in runs(admin, ended)] == ["cancelled"]


def test_only_the_owner_and_admins_see_a_vms_runs(
    server: RunningServer, admin: httpx.Client
) -> None:
    alice = make_user(server, "alice", group="physics")
    bob = make_user(server, "bob", group="physics")
    vm = alice.post("/api/v1/vms", json={"image": "base"}).json()["vms"][0]
    assert runs(alice, vm) == [] and runs(admin, vm) == []
    refused = bob.get(f"/api/v1/vms/{vm['id']}/runs")
    assert refused.status_code == 404
    assert "gridvm vm list" in refused.json()["hint"]
    assert alice.get(f"/api/v1/vms/{vm['id']}").json()["runs"] == 0
    assert admin.get("/api/v1/vms/vm-nosuch/runs").status_code == 404


def test_the_vms_of_a_lost_host_end_their_runs(tmp_path: Path) -> None:
    with run_server(tmp_path / "s", host_offline_after_s=0.5) as server:
        server.services.scheduling.lost_after_s = 1.0
        admin = server.client()
        upload(admin, make_qcow2(tmp_path / "a.qcow2"), "base")
        agent = register_host(server)
        vm = admin.post("/api/v1/vms", json={"image": "base", "vcpus": 3}).json()["vms"][0]
        assigned(agent, vm["id"])
        sync(agent, [report(vm, "running")])
        # The host goes silent.
        eventually(
            lambda: admin.get(f"/api/v1/vms/{vm['id']}").json()["state"] == "failed", timeout=15
        )
        (run,) = runs(admin, vm)
        assert (run["end_state"], run["vcpus"]) == ("failed", 3) and run["ended_at"] is not None
        # Usage stops counting when the host was given up on.
        first = admin.get("/api/v1/usage", params={"days": 1}).json()["series"][0]
        time.sleep(0.3)
        again = admin.get("/api/v1/usage", params={"days": 1}).json()["series"][0]
        assert sum(first["core_hours"]) == sum(again["core_hours"]) > 0
