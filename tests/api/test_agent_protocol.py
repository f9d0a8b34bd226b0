"""The server's side of the agent protocol, driven by hand as an agent would."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.api.helpers import (
    assigned,
    eventually,
    make_qcow2,
    register_host,
    report,
    run_then_stop,
    sync,
    upload,
)
from tests.servers import RunningServer


@pytest.fixture
def admin(server: RunningServer, tmp_path: Path) -> httpx.Client:
    client = server.client()
    upload(client, make_qcow2(tmp_path / "a.qcow2"), "base")
    return client


def test_vm_lifecycle_as_reported_by_the_agent(server: RunningServer, admin: httpx.Client) -> None:
    agent = register_host(server)
    vm = admin.post(
        "/api/v1/vms",
        json={"image": "base", "user_data": "#!/bin/sh\necho hi\n", "walltime_s": 600},
    ).json()["vms"][0]
    a = assigned(agent, vm["id"])
    assert (a["desired"], a["user_data"], a["hostname"]) == (
        "running",
        "#!/bin/sh\necho hi\n",
        "base",
    )
    assert admin.get(f"/api/v1/vms/{vm['id']}").json()["state"] == "scheduled"
    sync(agent, [report(vm, "running")])
    running = admin.get(f"/api/v1/vms/{vm['id']}").json()
    assert running["state"] == "running" and running["host"] == "node1" and running["expires_at"]
    sync(agent, [report(vm, "ended", "poweroff")])
    done = admin.get(f"/api/v1/vms/{vm['id']}").json()
    assert (done["state"], done["exit_reason"]) == ("done", "the guest powered off")
    assert all(x["vm_id"] != vm["id"] for x in sync(agent)["assignments"])


def test_console_upload_is_served_to_the_owner(server: RunningServer, admin: httpx.Client) -> None:
    agent = register_host(server)
    vm = admin.post("/api/v1/vms", json={"image": "base"}).json()["vms"][0]
    assigned(agent, vm["id"])
    put = agent.put(
        f"/api/v1/agent/vms/{vm['id']}/console", params={"offset": 0}, content=b"hello "
    )
    assert put.json() == {"size": 6}
    # A chunk sent from a stale offset is not appended twice.
    assert agent.put(
        f"/api/v1/agent/vms/{vm['id']}/console", params={"offset": 0}, content=b"hello "
    ).json() == {"size": 6}
    agent.put(f"/api/v1/agent/vms/{vm['id']}/console", params={"offset": 6}, content=b"world\n")
    assert admin.get(f"/api/v1/vms/{vm['id']}/console").text == "hello world\n"
    tail = admin.get(f"/api/v1/vms/{vm['id']}/console", params={"offset": 6})
    assert tail.text == "world\n" and tail.headers["x-console-offset"] == "12"
    assert sync(agent)["console_offsets"][vm["id"]] == 12


def test_walltime_expiry_asks_for_a_stop_and_ends_expired(
    server: RunningServer, admin: httpx.Client
) -> None:
    agent = register_host(server)
    vm = admin.post("/api/v1/vms", json={"image": "base", "walltime_s": 1}).json()["vms"][0]
    assigned(agent, vm["id"])
    sync(agent, [report(vm, "running")])
    stopping = eventually(
        lambda: next((a for a in sync(agent)["assignments"] if a["desired"] == "stopped"), None),
        timeout=10,
    )
    assert stopping["vm_id"] == vm["id"]
    assert admin.get(f"/api/v1/vms/{vm['id']}").json()["state"] == "stopping"
    sync(agent, [report(vm, "ended", "stopped")])
    ended = admin.get(f"/api/v1/vms/{vm['id']}").json()
    assert ended["state"] == "expired"
    assert "walltime" in ended["exit_reason"]


def test_single_mode_stop_keeps_the_disk_on_its_host_and_start_returns_there(
    server: RunningServer, admin: httpx.Client
) -> None:
    agent = register_host(server)
    vm = admin.post("/api/v1/vms", json={"image": "base", "mode": "single"}).json()["vms"][0]
    assigned(agent, vm["id"])
    # A bigger, emptier host arrives: the stopped VM must still come back to its disk.
    register_host(server, name="node2", cores=64, memory_mb=65536)
    sync(agent, [report(vm, "running")])
    admin.post(f"/api/v1/vms/{vm['id']}/stop")
    assert assigned(agent, vm["id"])["desired"] == "stopped"
    sync(agent, [report(vm, "stopped", "stopped")])
    assert admin.get(f"/api/v1/vms/{vm['id']}").json()["state"] == "stopped"
    assert assigned(agent, vm["id"])["desired"] == "stopped"
    admin.post(f"/api/v1/vms/{vm['id']}/start")
    eventually(lambda: admin.get(f"/api/v1/vms/{vm['id']}").json()["state"] == "scheduled")
    assert admin.get(f"/api/v1/vms/{vm['id']}").json()["host"] == "node1"
    assert assigned(agent, vm["id"])["desired"] == "running"


def test_terminate_of_a_running_vm_goes_through_the_agent(
    server: RunningServer, admin: httpx.Client
) -> None:
    agent = register_host(server)
    vm = admin.post("/api/v1/vms", json={"image": "base"}).json()["vms"][0]
    assigned(agent, vm["id"])
    sync(agent, [report(vm, "running")])
    assert admin.post(f"/api/v1/vms/{vm['id']}/terminate").json()["state"] == "stopping"
    assert assigned(agent, vm["id"])["desired"] == "deleted"
    sync(agent, [report(vm, "deleted", "killed")])
    ended = admin.get(f"/api/v1/vms/{vm['id']}").json()
    assert ended["state"] == "cancelled" and ended["exit_reason"] == "terminated by admin"


def test_disabled_host_gets_no_new_vms(server: RunningServer, admin: httpx.Client) -> None:
    agent = register_host(server)
    assert admin.post("/api/v1/hosts/node1/disable").json()["state"] == "disabled"
    vm = admin.post("/api/v1/vms", json={"image": "base"}).json()["vms"][0]
    reason = eventually(
        lambda: (
            (admin.get(f"/api/v1/vms/{vm['id']}").json()["pending_reason"] or "").startswith(
                "no host"
            )
            and admin.get(f"/api/v1/vms/{vm['id']}").json()["pending_reason"]
        )
    )
    assert "disabled (draining)" in reason
    assert sync(agent)["assignments"] == []
    admin.post("/api/v1/hosts/node1/enable")
    assigned(agent, vm["id"])


def test_stale_reports_from_an_old_attempt_are_ignored(
    server: RunningServer, admin: httpx.Client
) -> None:
    agent = register_host(server)
    vm = admin.post("/api/v1/vms", json={"image": "base"}).json()["vms"][0]
    assigned(agent, vm["id"])
    sync(agent, [report(vm, "running")])
    admin.post(f"/api/v1/vms/{vm['id']}/redeploy")
    a = assigned(agent, vm["id"])
    assert a["attempt"] == 2
    sync(agent, [report(vm, "ended", "crashed", attempt=1)])
    assert admin.get(f"/api/v1/vms/{vm['id']}").json()["state"] == "scheduled"


def test_a_report_from_before_a_start_does_not_undo_the_start(
    server: RunningServer, admin: httpx.Client
) -> None:
    agent = register_host(server)
    vm = admin.post("/api/v1/vms", json={"image": "base", "mode": "single"}).json()["vms"][0]
    run_then_stop(admin, agent, vm)
    admin.post(f"/api/v1/vms/{vm['id']}/start")
    eventually(lambda: admin.get(f"/api/v1/vms/{vm['id']}").json()["state"] == "scheduled")
    # The agent has not seen the start yet and still says "stopped" about boot 1.
    sync(agent, [report(vm, "stopped", "stopped")])
    assert admin.get(f"/api/v1/vms/{vm['id']}").json()["state"] == "scheduled"
    wanted = assigned(agent, vm["id"])
    assert (wanted["desired"], wanted["boot"]) == ("running", 2)
    sync(agent, [{**report(vm, "running"), "boot": 2}])
    assert admin.get(f"/api/v1/vms/{vm['id']}").json()["state"] == "running"


def test_agent_cannot_write_the_console_of_another_hosts_vm(
    server: RunningServer, admin: httpx.Client
) -> None:
    agent = register_host(server)
    other = register_host(server, "node2", cores=1, memory_mb=256)
    vm = admin.post("/api/v1/vms", json={"image": "base"}).json()["vms"][0]
    assigned(agent, vm["id"])
    forged = other.put(
        f"/api/v1/agent/vms/{vm['id']}/console", params={"offset": 0}, content=b"forged"
    )
    assert forged.status_code == 403
    assert admin.get(f"/api/v1/vms/{vm['id']}/console").text == ""


def test_console_beyond_the_cap_is_dropped_but_acknowledged(
    server: RunningServer, admin: httpx.Client
) -> None:
    agent = register_host(server)
    vm = admin.post("/api/v1/vms", json={"image": "base"}).json()["vms"][0]
    assigned(agent, vm["id"])
    chunk = b"x" * (1024 * 1024 - 1) + b"\n"
    offset = 0
    for _ in range(17):
        answer = agent.put(
            f"/api/v1/agent/vms/{vm['id']}/console", params={"offset": offset}, content=chunk
        )
        assert answer.json()["size"] == offset + len(chunk)
        offset += len(chunk)
    # The agent is told to carry on from where it is, not to send the same bytes again.
    assert sync(agent)["console_offsets"][vm["id"]] == offset
    console = admin.get(f"/api/v1/vms/{vm['id']}/console").content
    assert len(console) < offset
    assert console.endswith(b"[gridvm: console log truncated at 16 MiB]\n")


def test_terminate_wins_over_a_stopped_report_sent_at_the_same_time(
    server: RunningServer, admin: httpx.Client
) -> None:
    agent = register_host(server)
    vm = admin.post("/api/v1/vms", json={"image": "base", "mode": "single"}).json()["vms"][0]
    assigned(agent, vm["id"])
    sync(agent, [report(vm, "running")])
    admin.post(f"/api/v1/vms/{vm['id']}/terminate")
    # The guest happened to power off just before; the agent reports that first.
    sync(agent, [report(vm, "stopped", "poweroff")])
    assert admin.get(f"/api/v1/vms/{vm['id']}").json()["state"] == "stopping"
    assert assigned(agent, vm["id"])["desired"] == "deleted"
    sync(agent, [report(vm, "deleted", "killed")])
    assert admin.get(f"/api/v1/vms/{vm['id']}").json()["state"] == "cancelled"


def test_terminating_a_started_vm_still_waiting_for_its_host(
    server: RunningServer, admin: httpx.Client
) -> None:
    agent = register_host(server, cores=1, memory_mb=1024)
    vm = admin.post("/api/v1/vms", json={"image": "base", "mode": "single"}).json()["vms"][0]
    run_then_stop(admin, agent, vm)
    filler = admin.post("/api/v1/vms", json={"image": "base"}).json()["vms"][0]
    assigned(agent, filler["id"])  # the host is now full
    admin.post(f"/api/v1/vms/{vm['id']}/start")
    assert admin.get(f"/api/v1/vms/{vm['id']}").json()["state"] == "pending"
    admin.post(f"/api/v1/vms/{vm['id']}/terminate")
    wanted = assigned(agent, vm["id"])
    assert (wanted["desired"], wanted["boot"]) == ("deleted", 2)
    sync(agent, [{**report(vm, "deleted", "killed"), "boot": 2}])
    assert admin.get(f"/api/v1/vms/{vm['id']}").json()["state"] == "cancelled"
