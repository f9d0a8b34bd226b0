"""The guest API: VM tokens, reports (ready, progress, keys, data) and the group context."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.helpers import assigned, make_qcow2, make_user, register_host, report, sync, upload
from tests.servers import RunningServer

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGdYB8ki1tVgGbaMcOPyHXfS2zS4kzFrdmNGQWxvYpAX head@c"
CLUSTER = [
    {"name": "head", "count": 1, "provides": ["nfs", "torque"]},
    {"name": "worker", "count": 2, "requires": ["torque"]},
]


@pytest.fixture
def admin(server: RunningServer, tmp_path: Path) -> httpx.Client:
    client = server.client()
    upload(client, make_qcow2(tmp_path / "a.qcow2"), "base")
    return client


def boot(server: RunningServer, agent: httpx.Client, vm: dict[str, Any]) -> httpx.Client:
    """Play the VM's host until the VM runs; a client holding the VM's token, as its guest."""
    token = assigned(agent, vm["id"])["guest_token"]
    sync(agent, [report(vm, "running")])
    return server.client(token)


def cluster(server: RunningServer, admin: httpx.Client) -> dict[str, httpx.Client]:
    agent = register_host(server)
    made = admin.post("/api/v1/vms", json={"image": "base", "name": "c", "roles": CLUSTER})
    assert made.status_code == 201, made.text
    return {vm["name"]: boot(server, agent, vm) for vm in made.json()["vms"]}


def test_a_vm_token_reports_about_its_own_vm(server: RunningServer, admin: httpx.Client) -> None:
    agent = register_host(server)
    (vm,) = admin.post("/api/v1/vms", json={"image": "base", "name": "job"}).json()["vms"]
    guest = boot(server, agent, vm)
    me = guest.get("/api/v1/guest/self").json()
    assert (me["vm_id"], me["name"], me["hostname"], me["role"]) == (vm["id"], "job", "job", None)
    assert guest.post("/api/v1/guest/ready", json={"ip": "10.1.2.3"}).status_code == 200
    assert (
        guest.post(
            "/api/v1/guest/progress", json={"percent": 55.5, "message": "step 2"}
        ).status_code
        == 204
    )
    assert guest.put("/api/v1/guest/data/result.path", content=b"/out/x").status_code == 204
    assert guest.put("/api/v1/guest/public-keys", content=KEY + "\n").json() == [KEY]
    shown = admin.get(f"/api/v1/vms/{vm['id']}").json()
    assert shown["ready_at"] is not None and shown["ip"] == "10.1.2.3"
    assert (shown["progress"], shown["progress_message"]) == (55.5, "step 2")
    assert shown["published"] == {"result.path": "/out/x"}
    assert guest.delete("/api/v1/guest/data/result.path").status_code == 204
    assert admin.get(f"/api/v1/vms/{vm['id']}").json()["published"] == {}


def test_a_vm_token_opens_nothing_but_the_guest_api(
    server: RunningServer, admin: httpx.Client
) -> None:
    agent = register_host(server)
    (vm,) = admin.post("/api/v1/vms", json={"image": "base"}).json()["vms"]
    guest = boot(server, agent, vm)
    for path in ("/api/v1/vms", "/api/v1/images", "/api/v1/whoami"):
        refused = guest.get(path)
        assert refused.status_code == 401, path
        assert refused.json()["error"]
    assert guest.post("/api/v1/agent/sync", json={"host": "node1"}).status_code == 401
    # ...and user or agent tokens do not open the guest API.
    assert admin.get("/api/v1/guest/self").status_code == 401
    assert agent.get("/api/v1/guest/self").status_code == 401
    anonymous = httpx.Client(base_url=server.url).get("/api/v1/guest/self")
    assert anonymous.json()["message"] == "no VM token given"


def test_forged_and_retired_vm_tokens_are_refused(
    server: RunningServer, admin: httpx.Client
) -> None:
    agent = register_host(server)
    (vm,) = admin.post("/api/v1/vms", json={"image": "base"}).json()["vms"]
    token = assigned(agent, vm["id"])["guest_token"]
    sync(agent, [report(vm, "running")])
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert server.client(forged).get("/api/v1/guest/self").status_code == 401
    other_vm = token.replace(vm["id"], vm["id"][:-1] + ("x" if vm["id"][-1] != "x" else "y"))
    assert server.client(other_vm).get("/api/v1/guest/self").status_code == 401
    assert server.client(token).get("/api/v1/guest/self").status_code == 200
    # A redeploy is a new attempt: the old token is retired, the new one works.
    assert admin.post(f"/api/v1/vms/{vm['id']}/redeploy").status_code == 202
    retired = server.client(token).get("/api/v1/guest/self")
    assert retired.status_code == 401
    assert "expired" in retired.json()["message"]
    new_token = assigned(agent, vm["id"])["guest_token"]
    assert new_token != token
    sync(agent, [report(vm, "running", attempt=2)])
    assert server.client(new_token).get("/api/v1/guest/self").status_code == 200
    # When the VM ends, so does its token.
    sync(agent, [report(vm, "ended", "poweroff", attempt=2)])
    assert server.client(new_token).get("/api/v1/guest/self").status_code == 401


@pytest.mark.parametrize(
    ("method", "path", "body", "message"),
    [
        ("post", "/api/v1/guest/ready", {"ip": "not an address"}, "not an IP address"),
        ("post", "/api/v1/guest/progress", {"percent": 140}, "less than or equal to 100"),
        ("put", "/api/v1/guest/data/.hidden", b"x", "not a usable key"),
        ("put", "/api/v1/guest/data/blob", b"\xff\xfe", "not UTF-8 text"),
        ("put", "/api/v1/guest/data/big", b"x" * (64 * 1024 + 1), "at most 65536 bytes"),
        ("put", "/api/v1/guest/public-keys", b"ssh-rsa nonsense", "one-line public key"),
        ("delete", "/api/v1/guest/data/never", None, "published no 'never'"),
    ],
)
def test_bad_reports_are_refused_with_the_reason(
    server: RunningServer,
    admin: httpx.Client,
    method: str,
    path: str,
    body: Any,
    message: str,
) -> None:
    agent = register_host(server)
    (vm,) = admin.post("/api/v1/vms", json={"image": "base"}).json()["vms"]
    guest = boot(server, agent, vm)
    if isinstance(body, dict):
        response = guest.request(method.upper(), path, json=body)
    else:
        response = guest.request(method.upper(), path, content=body)
    assert 400 <= response.status_code < 500, response.text
    assert message in response.text


def test_members_see_their_peers_once_those_they_require_are_ready(
    server: RunningServer, admin: httpx.Client
) -> None:
    guests = cluster(server, admin)
    head, w0, w1 = guests["c-head-0"], guests["c-worker-0"], guests["c-worker-1"]
    context = w0.get("/api/v1/guest/context", params={"wait": "required"}).json()
    assert (context["me"], context["role"], context["complete"]) == ("c-worker-0", "worker", False)
    assert context["waiting_for"] == ["head"]
    # The workers need the head (it provides torque); the head needs nobody...
    assert head.get("/api/v1/guest/context", params={"wait": "required"}).json()["complete"]
    head.post("/api/v1/guest/ready", json={"ip": "10.0.0.1"})
    head.put("/api/v1/guest/data/nfs_export", content=b"/srv/data")
    context = w0.get("/api/v1/guest/context", params={"wait": "required"}).json()
    assert context["complete"] and context["provides"] == {
        "nfs": ["c-head-0"],
        "torque": ["c-head-0"],
    }
    peers = {p["name"]: p for p in context["peers"]}
    assert peers["c-head-0"]["ip"] == "10.0.0.1" and peers["c-head-0"]["ready"]
    assert peers["c-head-0"]["data"] == {"nfs_export": "/srv/data"}
    assert w0.get("/api/v1/guest/peers/c-head-0/data/nfs_export").text == "/srv/data"
    # ...but waiting for everyone, the head sees the workers arrive.
    assert head.get("/api/v1/guest/context", params={"wait": "all"}).json()["waiting_for"] == [
        "worker"
    ]
    w0.put("/api/v1/guest/public-keys", content=KEY)
    w0.post("/api/v1/guest/ready", json={"ip": "10.0.0.2"})
    w1.post("/api/v1/guest/ready", json={"ip": "10.0.0.3"})
    text = head.get("/api/v1/guest/context", params={"wait": "all", "format": "text"}).text
    assert text.splitlines() == [
        "complete",
        "c-worker-0 worker c-worker-0 10.0.0.2 ready",
        "c-worker-1 worker c-worker-1 10.0.0.3 ready",
    ]
    everyone = head.get("/api/v1/guest/context", params={"wait": "all"}).json()
    assert {p["name"]: p["public_keys"] for p in everyone["peers"]}["c-worker-0"] == [KEY]


def test_a_context_wait_returns_when_the_peer_is_ready(
    server: RunningServer, admin: httpx.Client
) -> None:
    guests = cluster(server, admin)
    answers: list[dict[str, Any]] = []
    waiter = threading.Thread(
        target=lambda: answers.append(
            guests["c-worker-0"]
            .get("/api/v1/guest/context", params={"wait": "required", "timeout": 60})
            .json()
        )
    )
    waiter.start()
    time.sleep(1)
    assert not answers  # still waiting for the head
    guests["c-head-0"].post("/api/v1/guest/ready", json={})
    waiter.join(30)
    assert answers and answers[0]["complete"]


def test_a_context_wait_that_times_out_says_what_it_waits_for(
    server: RunningServer, admin: httpx.Client
) -> None:
    guests = cluster(server, admin)
    answer = guests["c-worker-1"].get(
        "/api/v1/guest/context", params={"wait": "required", "timeout": 1, "format": "text"}
    )
    assert answer.status_code == 200
    assert answer.text.splitlines()[0] == "waiting head"
    missing = guests["c-worker-1"].get(
        "/api/v1/guest/peers/c-head-0/data/nfs_export", params={"wait": 1}
    )
    assert missing.status_code == 404 and "within 1s" in missing.json()["message"]


def test_peers_are_only_the_members_of_the_same_deployment(
    server: RunningServer, admin: httpx.Client
) -> None:
    guests = cluster(server, admin)
    agent = server.client()  # the host is already registered; reuse its VMs' host below
    del agent
    other = admin.post("/api/v1/vms", json={"image": "base", "name": "lone"}).json()["vms"][0]
    assert other["deployment"] != admin.get("/api/v1/vms").json()[0]["deployment"]
    context = guests["c-head-0"].get("/api/v1/guest/context").json()
    assert sorted(p["name"] for p in context["peers"]) == ["c-worker-0", "c-worker-1"]
    refused = guests["c-head-0"].get("/api/v1/guest/peers/lone/data/anything")
    assert refused.status_code == 404


def test_roles_make_named_members_with_their_role_in_the_environment(
    server: RunningServer, admin: httpx.Client
) -> None:
    agent = register_host(server)
    made = admin.post("/api/v1/vms", json={"image": "base", "name": "c", "roles": CLUSTER})
    assert made.status_code == 201, made.text
    deployment = made.json()
    assert deployment["count"] == 3
    assert deployment["roles"] == [
        {"name": "head", "count": 1, "provides": ["nfs", "torque"], "requires": []},
        {"name": "worker", "count": 2, "provides": [], "requires": ["torque"]},
    ]
    vms = deployment["vms"]
    assert [(vm["name"], vm["role"]) for vm in vms] == [
        ("c-head-0", "head"),
        ("c-worker-0", "worker"),
        ("c-worker-1", "worker"),
    ]
    env = assigned(agent, vms[2]["id"])["env"]
    assert env["GRIDVM_ROLE"] == "worker" and env["GRIDVM_INDEX"] == "2"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"roles": [{"name": "worker", "count": 2, "requires": ["torque"]}]},
            "role 'worker' requires 'torque', which no role provides",
        ),
        ({"roles": []}, "give 1 to 16 roles"),
        ({"roles": [{"name": "Head"}]}, "not a usable role name"),
        ({"roles": [{"name": "a"}, {"name": "a"}]}, "not a usable role name"),
        ({"roles": [{"name": "a", "count": 0}]}, "count of at least 1"),
        ({"roles": [{"name": "a", "provides": ["NFS!"]}]}, "not a usable capability"),
        ({"roles": [{"name": "a", "count": 2}], "count": 3}, "the roles add up to 2"),
        ({"roles": [{"name": "a"}], "params": [{"X": "1"}]}, "roles or scan parameters"),
        ({"roles": [{"name": "a", "count": 5000}]}, "cannot start 5000 VMs"),
        ({"roles": [{"name": "a", "count": 10**9}]}, "less than or equal to 100000"),
        (
            {"name": "n" * 60, "roles": [{"name": "worker"}]},
            "would be longer than 63 characters",
        ),
    ],
)
def test_bad_roles_are_refused_and_nothing_is_made(
    server: RunningServer, admin: httpx.Client, body: dict[str, Any], message: str
) -> None:
    response = admin.post("/api/v1/vms", json={"image": "base", **body})
    assert response.status_code == 422, response.text
    assert message in response.json()["message"]
    assert admin.get("/api/v1/vms").json() == []
    assert admin.get("/api/v1/deployments").json() == []


def test_another_users_vm_token_cannot_read_this_users_deployment(
    server: RunningServer, admin: httpx.Client
) -> None:
    guests = cluster(server, admin)
    alice = make_user(server, "alice")
    agent = server.client()
    del agent
    assert alice.get("/api/v1/vms").json() == []
    # Alice holds no VM token of this deployment; hers would name her own VM only.
    assert alice.get("/api/v1/guest/context").status_code == 401
    assert guests["c-head-0"].get("/api/v1/guest/self").json()["name"] == "c-head-0"


def test_a_vm_publishes_at_most_64_kib_in_all(server: RunningServer, admin: httpx.Client) -> None:
    agent = register_host(server)
    (vm,) = admin.post("/api/v1/vms", json={"image": "base"}).json()["vms"]
    guest = boot(server, agent, vm)
    assert guest.put("/api/v1/guest/data/one", content=b"x" * 40_000).status_code == 204
    refused = guest.put("/api/v1/guest/data/two", content=b"y" * 40_000)
    assert refused.status_code == 413
    assert "65536 bytes in all" in refused.json()["message"]
    assert list(admin.get(f"/api/v1/vms/{vm['id']}").json()["published"]) == ["one"]
