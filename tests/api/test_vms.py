from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from gridvm.common.config import SiteLimits
from tests.api.helpers import eventually, make_qcow2, make_user, register_host, upload
from tests.servers import RunningServer, run_server


@pytest.fixture
def with_image(server: RunningServer, tmp_path: Path) -> httpx.Client:
    admin = server.client()
    assert (
        upload(admin, make_qcow2(tmp_path / "a.qcow2"), "base", visibility="public").status_code
        == 201
    )
    return admin


def test_request_for_n_vms_makes_one_deployment(
    server: RunningServer, with_image: httpx.Client
) -> None:
    made = with_image.post("/api/v1/vms", json={"image": "base", "count": 3, "name": "scan"})
    assert made.status_code == 201
    deployment = made.json()
    assert deployment["count"] == 3 and deployment["states"] == {"pending": 3}
    assert [vm["name"] for vm in deployment["vms"]] == ["scan-0", "scan-1", "scan-2"]
    listed = with_image.get("/api/v1/vms", params={"deployment": deployment["id"]}).json()
    assert len(listed) == 3
    # With no host registered, every VM says why it waits.
    vm_id = listed[0]["id"]
    reason = eventually(
        lambda: "no host" in with_image.get(f"/api/v1/vms/{vm_id}").json()["pending_reason"]
    )
    assert reason


def test_pending_vm_says_what_it_waits_for(server: RunningServer, with_image: httpx.Client) -> None:
    register_host(server, cores=2, memory_mb=1024)
    vm = with_image.post(
        "/api/v1/vms", json={"image": "base", "memory_mb": 1024, "count": 2}
    ).json()["vms"][1]

    def reason() -> str | None:
        body = with_image.get(f"/api/v1/vms/{vm['id']}").json()
        r: str | None = body["pending_reason"]
        return r if r and "free memory" in r else None

    assert "1 host is short of free memory" in eventually(reason)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"count": 0}, "cannot start 0 VMs"),
        ({"count": 5000}, "cannot start 5000 VMs"),
        ({"vcpus": 0}, "0 vCPUs"),
        ({"memory_mb": 8}, "8 MiB"),
        ({"walltime_s": 10**9}, "walltime"),
        ({"mode": "forever"}, "mode"),
        ({"count": "many"}, "count"),
        ({"image": "nope"}, "no image 'nope'"),
    ],
)
def test_bad_requests_are_refused_and_start_nothing(
    server: RunningServer, with_image: httpx.Client, body: dict[str, object], message: str
) -> None:
    response = with_image.post("/api/v1/vms", json={"image": "base", **body})
    assert 400 <= response.status_code < 500
    assert message in response.json()["message"]
    assert with_image.get("/api/v1/vms").json() == []
    assert with_image.get("/api/v1/deployments").json() == []


def test_resources_no_host_could_ever_offer_are_refused(
    server: RunningServer, with_image: httpx.Client
) -> None:
    register_host(server, cores=4, memory_mb=4096)
    too_many = with_image.post("/api/v1/vms", json={"image": "base", "vcpus": 32})
    assert too_many.status_code == 422
    assert too_many.json()["message"] == "no host has 32 cores: the largest has 4"
    too_big = with_image.post("/api/v1/vms", json={"image": "base", "memory_mb": 65536})
    assert "no host has 65536 MiB" in too_big.json()["message"]
    assert with_image.get("/api/v1/vms").json() == []


def test_site_limit_on_request_size(tmp_path: Path) -> None:
    with run_server(tmp_path / "s", limits=SiteLimits(max_vms_per_request=4)) as server:
        admin = server.client()
        upload(admin, make_qcow2(tmp_path / "a.qcow2"), "base")
        response = admin.post("/api/v1/vms", json={"image": "base", "count": 5})
        assert response.status_code == 422
        assert response.json()["hint"] == "ask for 1 to 4"


def test_another_users_private_image_cannot_be_run(server: RunningServer, tmp_path: Path) -> None:
    alice = make_user(server, "alice")
    bob = make_user(server, "bob")
    upload(alice, make_qcow2(tmp_path / "a.qcow2"), "mine")
    response = bob.post("/api/v1/vms", json={"image": "mine"})
    assert response.status_code == 404
    assert bob.get("/api/v1/vms").json() == []


def test_users_see_only_their_own_vms(server: RunningServer, with_image: httpx.Client) -> None:
    alice = make_user(server, "alice")
    vm = with_image.post("/api/v1/vms", json={"image": "base"}).json()["vms"][0]
    assert alice.get(f"/api/v1/vms/{vm['id']}").status_code == 404
    assert alice.post(f"/api/v1/vms/{vm['id']}/terminate").status_code == 404
    assert alice.get("/api/v1/vms").json() == []
    assert len(with_image.get("/api/v1/vms", params={"all": True}).json()) == 1


def test_terminating_a_pending_vm_cancels_it(
    server: RunningServer, with_image: httpx.Client
) -> None:
    vm = with_image.post("/api/v1/vms", json={"image": "base"}).json()["vms"][0]
    done = with_image.post(f"/api/v1/vms/{vm['id']}/terminate").json()
    assert done["state"] == "cancelled"
    again = with_image.post(f"/api/v1/vms/{vm['id']}/terminate")
    assert again.status_code == 409


def test_actions_on_unknown_vm_are_404(server: RunningServer) -> None:
    for action in ("stop", "start", "terminate", "redeploy", "suspend", "resume"):
        response = server.client().post(f"/api/v1/vms/vm-000000000000/{action}")
        assert response.status_code == 404
        assert "gridvm vm list" in response.json()["hint"]


def test_disk_size_above_the_site_limit_is_refused(
    server: RunningServer, with_image: httpx.Client
) -> None:
    response = with_image.post("/api/v1/vms", json={"image": "base", "disk_gb": 10**6})
    assert response.status_code == 422
    assert "GiB" in response.json()["hint"]


def test_vms_of_a_lost_host_fail_and_free_their_resources(tmp_path: Path) -> None:
    from tests.api.helpers import assigned, report, sync

    with run_server(tmp_path / "s", host_offline_after_s=0.5) as server:
        server.services.scheduling.lost_after_s = 1.0
        admin = server.client()
        upload(admin, make_qcow2(tmp_path / "a.qcow2"), "base")
        agent = register_host(server)
        vm = admin.post("/api/v1/vms", json={"image": "base"}).json()["vms"][0]
        kept = admin.post("/api/v1/vms", json={"image": "base", "mode": "single"}).json()["vms"][0]
        assigned(agent, vm["id"])
        assigned(agent, kept["id"])
        sync(agent, [report(vm, "running"), report(kept, "running")])
        admin.post(f"/api/v1/vms/{kept['id']}/stop")
        sync(agent, [report(kept, "stopped", "stopped")])
        # The host goes silent.
        lost = eventually(
            lambda: (
                admin.get(f"/api/v1/vms/{vm['id']}").json()["state"] == "failed"
                and admin.get(f"/api/v1/vms/{vm['id']}").json()
            ),
            timeout=15,
        )
        assert "host node1 has not been heard from" in lost["exit_reason"]
        host = admin.get("/api/v1/hosts/node1").json()
        assert (host["online"], host["used_cores"]) == (False, 0)
        # A stopped single-mode VM holds only its disk there: it waits for the host.
        assert admin.get(f"/api/v1/vms/{kept['id']}").json()["state"] == "stopped"
