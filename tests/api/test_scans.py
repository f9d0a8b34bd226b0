from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from gridvm.common.config import SiteLimits
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
from tests.servers import RunningServer, run_server


@pytest.fixture
def admin(server: RunningServer, tmp_path: Path) -> httpx.Client:
    client = server.client()
    upload(client, make_qcow2(tmp_path / "a.qcow2"), "base")
    return client


def scan(admin: httpx.Client, rows: list[dict[str, str]], **extra: Any) -> httpx.Response:
    return admin.post("/api/v1/vms", json={"image": "base", "params": rows, **extra})


def test_each_row_becomes_a_vm_with_its_environment(
    server: RunningServer, admin: httpx.Client
) -> None:
    agent = register_host(server)
    made = scan(admin, [{"X": "1"}, {"X": "two words"}])
    assert made.status_code == 201
    vms = made.json()["vms"]
    assert [vm["name"] for vm in vms] == ["base-0", "base-1"]
    envs = [assigned(agent, vm["id"])["env"] for vm in vms]
    assert envs[1] == {
        "X": "two words",
        "GRIDVM_INDEX": "1",
        "GRIDVM_ATTEMPT": "1",
        "GRIDVM_VM_ID": vms[1]["id"],
        "GRIDVM_DEPLOYMENT": made.json()["id"],
    }
    assert envs[0]["GRIDVM_INDEX"] == "0"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"params": []}, "no rows"),
        ({"params": [{"1X": "a"}]}, "cannot be an environment variable"),
        ({"params": [{"GRIDVM_INDEX": "7"}]}, "cannot be an environment variable"),
        ({"params": [{"A": "1"}, {"A": "2"}], "count": 3}, "3 VMs asked for"),
        ({"params": [{"A": "x" * 20000}]}, "larger than"),
        ({"params": [{"A": "1"}], "max_running": 0}, "--max-running"),
    ],
)
def test_bad_scans_are_refused_and_start_nothing(
    server: RunningServer, admin: httpx.Client, body: dict[str, Any], message: str
) -> None:
    response = admin.post("/api/v1/vms", json={"image": "base", **body})
    assert response.status_code == 422
    assert message in response.json()["message"]
    assert admin.get("/api/v1/vms").json() == []


def test_rows_above_the_site_limit_are_refused(tmp_path: Path) -> None:
    with run_server(tmp_path / "s", limits=SiteLimits(max_vms_per_request=2)) as server:
        admin = server.client()
        upload(admin, make_qcow2(tmp_path / "a.qcow2"), "base")
        response = scan(admin, [{"A": str(i)} for i in range(3)])
        assert response.status_code == 422
        assert "cannot start 3 VMs" in response.json()["message"]


def test_max_running_holds_the_rest_back_with_a_reason(
    server: RunningServer, admin: httpx.Client
) -> None:
    agent = register_host(server, cores=8)
    vms = scan(admin, [{"A": str(i)} for i in range(3)], max_running=1).json()["vms"]
    assigned(agent, vms[0]["id"])
    held = eventually(
        lambda: (
            (r := admin.get(f"/api/v1/vms/{vms[1]['id']}").json()["pending_reason"])
            and "its turn" in r
            and r
        )
    )
    assert held == "waiting its turn: 1 VMs of this deployment may run at once"
    assert [a["vm_id"] for a in sync(agent)["assignments"]] == [vms[0]["id"]]
    sync(agent, [report(vms[0], "ended", "poweroff")])
    assigned(agent, vms[1]["id"])
    assert admin.get(f"/api/v1/vms/{vms[2]['id']}").json()["state"] == "pending"


def test_job_exit_status_decides_done_or_failed(server: RunningServer, admin: httpx.Client) -> None:
    agent = register_host(server)
    ok, bad = scan(admin, [{"A": "1"}, {"A": "2"}]).json()["vms"]
    for vm in (ok, bad):
        assigned(agent, vm["id"])
    sync(agent, [report(ok, "running"), report(bad, "running")])
    sync(
        agent,
        [
            {**report(ok, "ended", "poweroff"), "exit_status": 0},
            {**report(bad, "ended", "poweroff"), "exit_status": 2},
        ],
    )
    done, failed = (admin.get(f"/api/v1/vms/{vm['id']}").json() for vm in (ok, bad))
    assert (done["state"], done["exit_status"], done["exit_reason"]) == (
        "done",
        0,
        "the job finished (exit status 0)",
    )
    assert (failed["state"], failed["exit_status"], failed["exit_reason"]) == (
        "failed",
        2,
        "the job exited with status 2",
    )


def test_results_upload_and_download(server: RunningServer, admin: httpx.Client) -> None:
    agent = register_host(server)
    vm = admin.post("/api/v1/vms", json={"image": "base"}).json()["vms"][0]
    assigned(agent, vm["id"])
    assert admin.get(f"/api/v1/vms/{vm['id']}/results").status_code == 404
    stored = agent.put(f"/api/v1/agent/vms/{vm['id']}/results", content=b"pretend tar" * 100)
    assert stored.json() == {"size": 1100}
    got = admin.get(f"/api/v1/vms/{vm['id']}/results")
    assert got.content == b"pretend tar" * 100
    assert got.headers["content-type"] == "application/x-tar"
    assert admin.get(f"/api/v1/vms/{vm['id']}").json()["results_bytes"] == 1100
    # Redeploying starts over: the old results go.
    admin.post(f"/api/v1/vms/{vm['id']}/redeploy")
    assert admin.get(f"/api/v1/vms/{vm['id']}/results").status_code == 404


def test_results_over_the_users_quota_are_refused_and_leave_nothing(tmp_path: Path) -> None:
    limits = SiteLimits(results_quota_bytes_per_user=1000)
    with run_server(tmp_path / "s", limits=limits) as server:
        admin = server.client()
        upload(admin, make_qcow2(tmp_path / "a.qcow2"), "base")
        agent = register_host(server)
        first, second = (
            admin.post("/api/v1/vms", json={"image": "base"}).json()["vms"][0] for _ in range(2)
        )
        for vm in (first, second):
            assigned(agent, vm["id"])
        assert (
            agent.put(f"/api/v1/agent/vms/{first['id']}/results", content=b"x" * 800).status_code
            == 200
        )
        refused = agent.put(f"/api/v1/agent/vms/{second['id']}/results", content=b"y" * 800)
        assert refused.status_code == 413
        assert "larger than" in refused.json()["message"]
        assert admin.get(f"/api/v1/vms/{second['id']}/results").status_code == 404
        assert not [
            p for p in (server.data_dir / "results").iterdir() if p.name.startswith(".part")
        ]


def test_another_hosts_agent_cannot_store_results(
    server: RunningServer, admin: httpx.Client
) -> None:
    agent = register_host(server)
    other = register_host(server, "node2", cores=1, memory_mb=256)
    vm = admin.post("/api/v1/vms", json={"image": "base"}).json()["vms"][0]
    assigned(agent, vm["id"])
    assert other.put(f"/api/v1/agent/vms/{vm['id']}/results", content=b"forged").status_code == 403


def test_cancel_ends_every_member_that_has_not_ended(
    server: RunningServer, admin: httpx.Client
) -> None:
    agent = register_host(server, cores=1, memory_mb=1024)
    made = scan(admin, [{"A": str(i)} for i in range(3)]).json()
    first = made["vms"][0]
    assigned(agent, first["id"])
    sync(agent, [report(first, "running")])
    cancelled = admin.post(f"/api/v1/deployments/{made['id']}/cancel")
    assert cancelled.status_code == 202
    # The two waiting for room end at once; the running one is being terminated on its host.
    assert cancelled.json()["states"] == {"stopping": 1, "cancelled": 2}
    assert assigned(agent, first["id"])["desired"] == "deleted"


def test_redeploy_failed_starts_only_the_failed_members_again(
    server: RunningServer, admin: httpx.Client
) -> None:
    agent = register_host(server)
    ok, bad = scan(admin, [{"A": "1"}, {"A": "2"}]).json()["vms"]
    for vm in (ok, bad):
        assigned(agent, vm["id"])
    sync(
        agent,
        [
            {**report(ok, "ended", "poweroff"), "exit_status": 0},
            {**report(bad, "ended", "poweroff"), "exit_status": 1},
        ],
    )
    again = admin.post(f"/api/v1/deployments/{ok['deployment']}/redeploy-failed").json()
    by_id = {vm["id"]: vm for vm in again["vms"]}
    assert (by_id[ok["id"]]["state"], by_id[ok["id"]]["attempt"]) == ("done", 1)
    assert by_id[bad["id"]]["attempt"] == 2 and by_id[bad["id"]]["state"] in (
        "pending",
        "scheduled",
    )
    assert assigned(agent, bad["id"])["attempt"] == 2


def test_other_users_cannot_cancel_a_deployment(server: RunningServer, admin: httpx.Client) -> None:
    from tests.api.helpers import make_user

    made = scan(admin, [{"A": "1"}]).json()
    bob = make_user(server, "bob")
    assert bob.post(f"/api/v1/deployments/{made['id']}/cancel").status_code == 404
    assert admin.get(f"/api/v1/vms/{made['vms'][0]['id']}").json()["state"] == "pending"


def test_save_a_stopped_single_vm_as_an_image(
    server: RunningServer, admin: httpx.Client, tmp_path: Path
) -> None:
    agent = register_host(server)
    vm = admin.post("/api/v1/vms", json={"image": "base", "mode": "single"}).json()["vms"][0]
    assigned(agent, vm["id"])
    sync(agent, [report(vm, "running")])
    refused = admin.post(f"/api/v1/vms/{vm['id']}/save", json={"name": "custom"})
    assert refused.status_code == 409 and "stop it first" in refused.json()["hint"]
    admin.post(f"/api/v1/vms/{vm['id']}/stop")
    sync(agent, [report(vm, "stopped", "stopped")])
    asked = admin.post(f"/api/v1/vms/{vm['id']}/save", json={"name": "custom"})
    assert asked.status_code == 202 and asked.json()["saving_as"] == "custom"
    wanted = assigned(agent, vm["id"])
    assert (wanted["save_as"], wanted["desired"]) == ("custom", "stopped")
    disk = make_qcow2(tmp_path / "flat.qcow2", "48M")
    saved = agent.put(f"/api/v1/agent/vms/{vm['id']}/disk-image", content=disk.read_bytes())
    assert saved.status_code == 200, saved.text
    image = admin.get("/api/v1/images/custom").json()
    assert (image["owner"], image["visibility"], image["trust"], image["virtual_size"]) == (
        "admin",
        "private",
        "user",
        48 * 2**20,
    )
    after = admin.get(f"/api/v1/vms/{vm['id']}").json()
    assert (after["saving_as"], after["save_error"]) == (None, None)
    assert image["version"] == 1
    # Saving again under that name makes its next version (the vm save --as NAME flow).
    again = admin.post(f"/api/v1/vms/{vm['id']}/save", json={"name": "custom"})
    assert again.status_code == 202, again.text
    assigned(agent, vm["id"])
    disk2 = make_qcow2(tmp_path / "flat2.qcow2", "56M")
    saved = agent.put(f"/api/v1/agent/vms/{vm['id']}/disk-image", content=disk2.read_bytes())
    assert saved.status_code == 200, saved.text
    latest = admin.get("/api/v1/images/custom").json()
    assert (latest["version"], latest["virtual_size"]) == (2, 56 * 2**20)
    assert admin.get("/api/v1/images/custom:1").json()["id"] == image["id"]


def test_a_failed_save_is_shown_on_the_vm(
    server: RunningServer, admin: httpx.Client, tmp_path: Path
) -> None:
    agent = register_host(server)
    vm = admin.post("/api/v1/vms", json={"image": "base", "mode": "single"}).json()["vms"][0]
    run_then_stop(admin, agent, vm)
    admin.post(f"/api/v1/vms/{vm['id']}/save", json={"name": "broken"})
    save_id = assigned(agent, vm["id"])["save_id"]
    sync(
        agent,
        [{**report(vm, "stopped", "stopped"), "saved_id": save_id, "save_error": "disk full"}],
    )
    after = admin.get(f"/api/v1/vms/{vm['id']}").json()
    assert (after["saving_as"], after["save_error"]) == (None, "disk full")
    assert admin.get("/api/v1/images/broken").status_code == 404
