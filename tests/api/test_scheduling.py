"""Fair share, quotas, reservations, leases and placement wishes through the API."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from gridvm.common.config import ServerConfig
from gridvm.services.server import ServerServices
from tests.api.helpers import (
    assigned,
    eventually,
    host_registration,
    make_qcow2,
    make_user,
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
    upload(client, make_qcow2(tmp_path / "a.qcow2"), "base").raise_for_status()
    client.patch("/api/v1/images/base", json={"visibility": "public"})
    return client


def run(client: httpx.Client, **body: Any) -> dict[str, Any]:
    response = client.post("/api/v1/vms", json={"image": "base", **body})
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


def states(client: httpx.Client, deployment: str) -> dict[str, int]:
    counts: dict[str, int] = client.get(f"/api/v1/deployments/{deployment}").json()["states"]
    return counts


def when(offset_s: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=offset_s)).isoformat()


def test_groups_form_a_tree_with_shares(server: RunningServer, admin: httpx.Client) -> None:
    assert admin.post("/api/v1/groups", json={"name": "physics", "shares": 60}).status_code == 201
    made = admin.post("/api/v1/groups", json={"name": "cms", "parent": "physics", "shares": 2})
    assert made.status_code == 201, made.text
    assert (made.json()["path"], made.json()["shares"]) == ("physics/cms", 2.0)
    assert admin.patch("/api/v1/groups/cms", json={"shares": 5}).json()["shares"] == 5.0
    missing = admin.post("/api/v1/groups", json={"name": "x", "parent": "nope"})
    assert missing.status_code == 404 and "no group 'nope'" in missing.json()["message"]
    negative = admin.post("/api/v1/groups", json={"name": "y", "shares": -1})
    assert negative.status_code == 422
    admin.post("/api/v1/groups", json={"name": "atlas", "parent": "physics", "shares": 3})
    tree = {row["group"]: row for row in admin.get("/api/v1/share").json()["groups"]}
    assert {"physics", "physics/cms", "physics/atlas"} <= set(tree)
    physics = tree["physics"]["normalised_share"]
    assert tree["physics/cms"]["normalised_share"] == pytest.approx(physics * 5 / 8)
    assert tree["physics/atlas"]["normalised_share"] == pytest.approx(physics * 3 / 8)


def test_usage_accrues_for_running_vms_and_lowers_the_factor(
    server: RunningServer, admin: httpx.Client
) -> None:
    alice = make_user(server, "alice", group="physics")
    make_user(server, "bob", group="bio")
    agent = register_host(server)
    (vm,) = run(alice)["vms"]
    assigned(agent, vm["id"])
    sync(agent, [report(vm, "running")])

    def physics_used() -> bool:
        rows = {r["group"]: r for r in alice.get("/api/v1/share").json()["groups"]}
        return rows["physics"]["usage_core_hours"] > 0 and rows["physics"]["running_vms"] == 1

    eventually(physics_used, timeout=10)
    rows = {r["group"]: r for r in alice.get("/api/v1/share").json()["groups"]}
    assert rows["physics"]["factor"] < rows["bio"]["factor"] == 1.0
    assert rows["physics"]["usage_fraction"] == 1.0


def test_a_group_quota_holds_back_what_would_go_over(
    server: RunningServer, admin: httpx.Client
) -> None:
    alice = make_user(server, "alice", group="physics")
    register_host(server)
    quota = admin.put("/api/v1/quotas/group/physics", json={"cores": 2, "vms": 5})
    assert quota.status_code == 200, quota.text
    deployment = run(alice, count=5)["id"]
    eventually(lambda: states(alice, deployment) == {"scheduled": 2, "pending": 3})
    waiting = [v for v in alice.get("/api/v1/vms").json() if v["state"] == "pending"]
    assert waiting[0]["pending_reason"] == "group physics is at its quota: 2 of 2 cores in use"
    shown = alice.get("/api/v1/quotas").json()
    assert shown == [
        {
            "kind": "group",
            "name": "physics",
            "cores": 2,
            "memory_mb": None,
            "vms": 5,
            "used_cores": 2,
            "used_memory_mb": 512,
            "used_vms": 2,
            "image_bytes": None,
            "images": None,
            "used_image_bytes": 0,
            "used_images": 0,
            "used_volume_bytes": 0,
        }
    ]
    admin.put("/api/v1/quotas/group/physics", json={"cores": 4})
    eventually(lambda: states(alice, deployment) == {"scheduled": 4, "pending": 1})
    admin.delete("/api/v1/quotas/group/physics")
    eventually(lambda: states(alice, deployment) == {"scheduled": 5})


def test_a_user_quota_counts_only_that_users_vms(
    server: RunningServer, admin: httpx.Client
) -> None:
    alice = make_user(server, "alice", group="physics")
    bob = make_user(server, "bob", group="physics")
    register_host(server)
    admin.put("/api/v1/quotas/user/alice", json={"vms": 1})
    a = run(alice, count=2)["id"]
    b = run(bob, count=2)["id"]
    eventually(lambda: states(alice, a) == {"scheduled": 1, "pending": 1})
    eventually(lambda: states(bob, b) == {"scheduled": 2})
    assert bob.get("/api/v1/quotas").json() == []  # bob has none; alice's is hers
    assert alice.get("/api/v1/quotas").json()[0]["used_vms"] == 1


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/api/v1/quotas/group/nope", {"cores": 1}, 404, "no group 'nope'"),
        ("/api/v1/quotas/user/nobody", {"vms": 1}, 404, "no user 'nobody'"),
        ("/api/v1/quotas/team/physics", {"vms": 1}, 422, "user"),
        ("/api/v1/quotas/group/physics", {"cores": -1}, 422, "greater than or equal to 0"),
    ],
)
def test_bad_quotas_are_refused(
    server: RunningServer,
    admin: httpx.Client,
    path: str,
    body: dict[str, Any],
    status: int,
    message: str,
) -> None:
    make_user(server, "alice", group="physics")
    response = admin.put(path, json=body)
    assert response.status_code == status, response.text
    assert message in response.text


def test_only_admins_set_quotas(server: RunningServer, admin: httpx.Client) -> None:
    alice = make_user(server, "alice", group="physics")
    refused = alice.put("/api/v1/quotas/group/physics", json={"cores": 100})
    assert refused.status_code == 403


def test_concurrent_requests_and_two_schedulers_never_pass_a_quota(
    server: RunningServer, admin: httpx.Client, tmp_path: Path
) -> None:
    alice = make_user(server, "alice", group="physics")
    register_host(server, cores=64, memory_mb=64 * 1024)
    admin.put("/api/v1/quotas/group/physics", json={"cores": 10})
    # A second server process's scheduler on the same database (another replica).
    config = server.services.config
    replica = ServerServices.from_config(
        ServerConfig(data_dir=tmp_path / "replica", database_url=config.database)
    )
    stop = threading.Event()
    overs: list[int] = []

    def replica_scheduler() -> None:
        while not stop.is_set():
            replica.scheduling.schedule_pass()

    def watch() -> None:
        while not stop.is_set():
            held = [
                v
                for v in admin.get("/api/v1/vms", params={"all": True}).json()
                if v["state"] == "scheduled"
            ]
            if len(held) > 10:
                overs.append(len(held))
            time.sleep(0.02)

    def request() -> None:
        response = alice.post("/api/v1/vms", json={"image": "base"})
        assert response.status_code == 201, response.text

    threads = [threading.Thread(target=replica_scheduler), threading.Thread(target=watch)]
    for t in threads:
        t.start()
    clients = [threading.Thread(target=request) for _ in range(100)]
    for t in clients:
        t.start()
    for t in clients:
        t.join()
    eventually(
        lambda: sum(
            1 for v in alice.get("/api/v1/vms").json() if v["state"] == "scheduled"
        ) == 10,
        timeout=20,
    )  # fmt: skip
    time.sleep(1)  # a few more passes of both schedulers
    stop.set()
    for t in threads:
        t.join()
    replica.db.dispose()
    vms = alice.get("/api/v1/vms").json()
    assert len(vms) == 100
    assert sum(1 for v in vms if v["state"] == "scheduled") == 10
    assert overs == []


def test_reservations_keep_cores_for_their_group(
    server: RunningServer, admin: httpx.Client
) -> None:
    alice = make_user(server, "alice", group="physics")
    bob = make_user(server, "bob", group="bio")
    register_host(server, cores=4)
    made = admin.post(
        "/api/v1/reservations",
        json={"group": "bio", "cores": 4, "starts_at": when(-60), "ends_at": when(3600)},
    )
    assert made.status_code == 201, made.text
    assert made.json()["active"] is True
    a = run(alice)["id"]
    b = run(bob)["id"]
    eventually(lambda: states(bob, b) == {"scheduled": 1})
    eventually(
        lambda: (
            "reserved for another group"
            in (alice.get(f"/api/v1/deployments/{a}").json()["vms"][0]["pending_reason"] or "")
        )
    )
    assert [r["group"] for r in bob.get("/api/v1/reservations").json()] == ["bio"]
    assert alice.get("/api/v1/reservations").json() == []  # not her group's
    admin.delete(f"/api/v1/reservations/{made.json()['id']}")
    eventually(lambda: states(alice, a) == {"scheduled": 1})


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"group": "nope", "cores": 1}, "no group 'nope'"),
        ({"group": "physics", "cores": 99}, "cannot reserve 99 cores: the site has 8"),
        ({"group": "physics", "cores": 1, "hosts": ["ghost"]}, "no host 'ghost'"),
        ({"group": "physics", "cores": 1, "ends_at": when(-10)}, "end after it starts"),
        ({"group": "physics", "cores": 10**12}, "less than or equal to"),
    ],
)
def test_bad_reservations_are_refused(
    server: RunningServer, admin: httpx.Client, body: dict[str, Any], message: str
) -> None:
    make_user(server, "alice", group="physics")
    register_host(server)
    full = {"starts_at": when(0), "ends_at": when(3600), **body}
    response = admin.post("/api/v1/reservations", json=full)
    assert 400 <= response.status_code < 500, response.text
    assert message in response.json()["message"]
    assert admin.get("/api/v1/reservations").json() == []


def test_a_lease_is_extended_within_the_site_limit(
    server: RunningServer, admin: httpx.Client
) -> None:
    agent = register_host(server)
    (vm,) = run(admin, walltime_s=600)["vms"]
    assigned(agent, vm["id"])
    sync(agent, [report(vm, "running")])
    before = eventually(lambda: admin.get(f"/api/v1/vms/{vm['id']}").json()["expires_at"])
    extended = admin.post(f"/api/v1/vms/{vm['id']}/extend", json={"by_s": 3600})
    assert extended.status_code == 200, extended.text
    assert extended.json()["walltime_s"] == 4200
    gained = datetime.fromisoformat(extended.json()["expires_at"]) - datetime.fromisoformat(before)
    assert gained == timedelta(hours=1)
    too_long = admin.post(f"/api/v1/vms/{vm['id']}/extend", json={"by_s": 30 * 86400})
    assert too_long.status_code == 422
    assert "beyond the site's limit" in too_long.json()["message"]


def test_a_deployment_past_its_queue_timeout_fails_with_the_reason(
    server: RunningServer, admin: httpx.Client
) -> None:
    register_host(server, cores=1)
    deployment = run(admin, vcpus=1, memory_mb=256, count=2, queue_timeout_s=1)["id"]
    eventually(lambda: states(admin, deployment) == {"scheduled": 1, "failed": 1}, timeout=10)
    failed = next(
        v for v in admin.get(f"/api/v1/deployments/{deployment}").json()["vms"]
        if v["state"] == "failed"
    )  # fmt: skip
    assert failed["exit_reason"].startswith("still waiting after the queue timeout of 1s: ")
    assert "short of free cores" in failed["exit_reason"]


def test_label_selectors_are_checked_and_used(server: RunningServer, admin: httpx.Client) -> None:
    register_host(server)
    bad = admin.post("/api/v1/vms", json={"image": "base", "selector": "mem_gb >= lots"})
    assert bad.status_code == 422 and "compares numbers" in bad.json()["message"]
    deployment = run(admin, selector="gpu = yes")["id"]
    eventually(
        lambda: (
            "without the labels it asks for"
            in (
                admin.get(f"/api/v1/deployments/{deployment}").json()["vms"][0]["pending_reason"]
                or ""
            )
        )
    )
    shown = admin.get(f"/api/v1/deployments/{deployment}").json()
    assert shown["selector"] == "gpu = yes"
    assert shown["vms"][0]["priority"] is not None


def test_a_gang_waits_until_all_members_fit(server: RunningServer, admin: httpx.Client) -> None:
    register_host(server, cores=2)
    deployment = run(admin, count=3, gang=True)["id"]
    eventually(
        lambda: (
            "its gang of 3 cannot start together"
            in (
                admin.get(f"/api/v1/deployments/{deployment}").json()["vms"][0]["pending_reason"]
                or ""
            )
        )
    )
    assert states(admin, deployment) == {"pending": 3}
    register_host(server, "node2", cores=2)
    eventually(lambda: states(admin, deployment) == {"scheduled": 3})


def test_user_images_run_only_on_hosts_that_serve_the_dmz(
    server: RunningServer, admin: httpx.Client
) -> None:
    agent = register_host(server)  # serves both zones
    registration = host_registration()
    trusted_only = agent.post("/api/v1/agent/register", json={**registration, "zones": ["trusted"]})
    assert trusted_only.status_code == 200, trusted_only.text
    assert admin.get("/api/v1/hosts/node1").json()["zones"] == ["trusted"]
    deployment = run(admin)["id"]  # "base" was uploaded: trust class user
    eventually(
        lambda: (
            "1 host is in a zone its image may not run in"
            in (
                admin.get(f"/api/v1/deployments/{deployment}").json()["vms"][0]["pending_reason"]
                or ""
            )
        )
    )
    both = agent.post("/api/v1/agent/register", json=registration)
    assert both.status_code == 200
    eventually(lambda: states(admin, deployment) == {"scheduled": 1})
    none = agent.post("/api/v1/agent/register", json={**registration, "zones": []})
    assert none.status_code == 422


def test_reservations_cannot_overbook_a_window(server: RunningServer, admin: httpx.Client) -> None:
    make_user(server, "alice", group="physics")
    register_host(server)  # 8 cores
    window = {"starts_at": when(3600), "ends_at": when(7200)}
    first = admin.post("/api/v1/reservations", json={"group": "physics", "cores": 6, **window})
    assert first.status_code == 201
    over = admin.post("/api/v1/reservations", json={"group": "physics", "cores": 4, **window})
    assert over.status_code == 422
    assert "6 of 8 are reserved in that window already" in over.json()["message"]
    later = {"starts_at": when(7200), "ends_at": when(9000)}
    assert (
        admin.post(
            "/api/v1/reservations", json={"group": "physics", "cores": 8, **later}
        ).status_code
        == 201
    )


def test_a_restarted_single_mode_vm_is_never_failed_by_the_queue_timeout(
    server: RunningServer, admin: httpx.Client
) -> None:
    agent = register_host(server)
    (vm,) = run(admin, mode="single", queue_timeout_s=1)["vms"]
    run_then_stop(admin, agent, vm)
    eventually(lambda: admin.get(f"/api/v1/vms/{vm['id']}").json()["state"] == "stopped")
    time.sleep(2)  # longer than the queue timeout since the request
    assert admin.post(f"/api/v1/vms/{vm['id']}/start").status_code == 202
    eventually(lambda: admin.get(f"/api/v1/vms/{vm['id']}").json()["state"] == "scheduled")


def test_a_request_its_quota_could_never_allow_is_refused_and_starts_nothing(
    server: RunningServer, admin: httpx.Client
) -> None:
    alice = make_user(server, "alice", group="physics")
    admin.put("/api/v1/quotas/group/physics", json={"cores": 2, "memory_mb": 1024})
    admin.put("/api/v1/quotas/user/alice", json={"vms": 3})
    image = {"image": "base"}
    too_big = alice.post("/api/v1/vms", json={**image, "vcpus": 4})
    assert too_big.status_code == 422, too_big.text
    assert too_big.json()["message"] == (
        "one VM asks for 4 vCPUs, more than group physics's quota of 2 cores"
    )
    gang = alice.post("/api/v1/vms", json={**image, "count": 4, "gang": True})
    assert gang.status_code == 422, gang.text
    assert gang.json()["message"] == (
        "the gang of 4 VMs asks for 4 vCPUs, more than group physics's quota of 2 cores"
    )
    admin.put("/api/v1/quotas/group/physics", json={"cores": 8})
    gang = alice.post("/api/v1/vms", json={**image, "count": 4, "gang": True})
    assert gang.json()["message"] == (
        "the gang of 4 VMs asks for 4 VMs, more than user alice's quota of 3 VMs"
    )
    assert alice.get("/api/v1/deployments").json() == []
    # Many VMs that fit the quota one by one are accepted: they take turns.
    assert alice.post("/api/v1/vms", json={**image, "count": 4, "vcpus": 2}).status_code == 201
