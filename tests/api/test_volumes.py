"""Volumes through the API: create, quota, attach at VM creation and to a stopped VM,
detach when the VM ends, the next run on the volume's host, and deletion through the
host's agent. The agent's side is played by hand (see tests.api.helpers)."""

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
    make_user,
    register_host,
    report,
    sync,
    upload,
)
from tests.servers import RunningServer, run_server


@pytest.fixture
def alice(server: RunningServer, tmp_path: Path) -> httpx.Client:
    admin = server.client()
    upload(admin, make_qcow2(tmp_path / "a.qcow2"), "base", visibility="public")
    return make_user(server, "alice", group="physics")


def _volume(client: httpx.Client, name: str, size: str = "1G") -> dict[str, Any]:
    made = client.post("/api/v1/volumes", json={"name": name, "size": size})
    assert made.status_code == 201, made.text
    body: dict[str, Any] = made.json()
    return body


def _run(client: httpx.Client, **fields: Any) -> httpx.Response:
    return client.post("/api/v1/vms", json={"image": "base", **fields})


def _vm(client: httpx.Client, **fields: Any) -> dict[str, Any]:
    made = _run(client, **fields)
    assert made.status_code == 201, made.text
    vm: dict[str, Any] = made.json()["vms"][0]
    return vm


def test_create_list_show_and_delete_a_never_used_volume(
    server: RunningServer, alice: httpx.Client
) -> None:
    vol = _volume(alice, "scratch", "2G")
    assert (vol["name"], vol["owner"], vol["size_bytes"]) == ("scratch", "alice", 2 * 1024**3)
    assert (vol["state"], vol["host"], vol["vm"]) == ("available", None, None)
    assert vol["serial"] == vol["id"]
    assert [v["name"] for v in alice.get("/api/v1/volumes").json()] == ["scratch"]
    assert alice.get("/api/v1/volumes/scratch").json()["id"] == vol["id"]
    assert alice.get(f"/api/v1/volumes/{vol['id']}").json()["name"] == "scratch"
    # Others do not see it.
    bob = make_user(server, "bob", group="physics")
    assert bob.get("/api/v1/volumes").json() == []
    assert bob.get("/api/v1/volumes/scratch").status_code == 404
    # No host holds a file of it yet: it goes at once.
    assert alice.delete("/api/v1/volumes/scratch").status_code == 204
    assert alice.get("/api/v1/volumes/scratch").status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"name": "v", "size": "lots"}, 422, "'lots' is not a size"),
        ({"name": "v", "size": "1K"}, 422, "a volume of 1 KiB is not allowed here"),
        ({"name": "v", "size": "3T"}, 422, "a volume of 3 TiB is not allowed here"),
        ({"name": "../x", "size": "1G"}, 422, "volume name"),
    ],
)
def test_bad_volumes_are_refused(
    alice: httpx.Client, body: dict[str, str], status: int, message: str
) -> None:
    refused = alice.post("/api/v1/volumes", json=body)
    assert refused.status_code == status, refused.text
    assert message in refused.json()["message"]
    assert alice.get("/api/v1/volumes").json() == []


def test_a_volume_name_is_taken_once_per_owner(server: RunningServer, alice: httpx.Client) -> None:
    _volume(alice, "data")
    again = alice.post("/api/v1/volumes", json={"name": "data", "size": "1G"})
    assert again.status_code == 409
    assert _volume(make_user(server, "bob", group="physics"), "data")["owner"] == "bob"


def test_the_site_limit_on_volume_size(tmp_path: Path) -> None:
    with run_server(tmp_path / "s", limits=SiteLimits(max_volume_bytes=2 * 1024**3)) as server:
        refused = server.client().post("/api/v1/volumes", json={"name": "v", "size": "3G"})
        assert refused.status_code == 422
        assert refused.json()["hint"] == "ask for 1M to 2 GiB"


def test_volumes_count_in_the_storage_quota(
    server: RunningServer, alice: httpx.Client, tmp_path: Path
) -> None:
    admin = server.client()
    admin.put("/api/v1/quotas/user/alice", json={"image_bytes": 3 * 1024**3, "images": 1})
    _volume(alice, "first", "2G")
    refused = alice.post("/api/v1/volumes", json={"name": "second", "size": "2G"})
    assert refused.status_code == 413, refused.text
    assert refused.json()["message"] == (
        "storage quota: user alice may store 3 GiB of images and volumes, has 2 GiB"
        " and this one is 2 GiB"
    )
    assert "gridvm volume rm" in refused.json()["hint"]
    assert [v["name"] for v in alice.get("/api/v1/volumes").json()] == ["first"]
    # A volume is not an image: the image count quota leaves room for one image still,
    # and the volume's bytes count for images as well.
    _volume(alice, "third", "1G")
    shown = alice.get("/api/v1/quotas").json()[0]
    assert (shown["used_image_bytes"], shown["used_volume_bytes"]) == (3 * 1024**3, 3 * 1024**3)
    assert shown["used_images"] == 0
    assert upload(alice, make_qcow2(tmp_path / "b.qcow2"), "mine").status_code == 413
    # A group's quota covers its members' volumes.
    admin.put("/api/v1/quotas/group/physics", json={"image_bytes": 4 * 1024**3})
    bob = make_user(server, "bob", group="physics")
    assert bob.post("/api/v1/volumes", json={"name": "b", "size": "2G"}).status_code == 413
    assert bob.post("/api/v1/volumes", json={"name": "b", "size": "1G"}).status_code == 201


def test_a_volume_attaches_to_one_new_vm_and_refusals_create_nothing(
    server: RunningServer, alice: httpx.Client
) -> None:
    _volume(alice, "data")
    vm = _vm(alice, volumes=["data"], mode="single", name="dev")
    assert vm["volumes"] == ["data"]
    vol = alice.get("/api/v1/volumes/data").json()
    assert (vol["state"], vol["vm"]) == ("attached", vm["id"])
    before = len(alice.get("/api/v1/vms").json())

    in_use = _run(alice, volumes=["data"])
    assert in_use.status_code == 409
    assert in_use.json()["message"] == f"volume 'data' is attached to VM {vm['id']}"
    assert "one VM at a time" in in_use.json()["hint"]

    _volume(alice, "other")
    many = _run(alice, volumes=["other"], count=2)
    assert many.status_code == 422
    assert many.json()["message"] == "a volume attaches to one VM, and this request is for 2 VMs"
    scan = _run(alice, volumes=["other"], params=[{"a": "1"}, {"a": "2"}])
    assert scan.status_code == 422
    assert _run(alice, volumes=["nope"]).status_code == 404
    assert _run(alice, volumes=["other", "other"]).status_code == 422
    assert len(alice.get("/api/v1/vms").json()) == before
    assert alice.get("/api/v1/volumes/other").json()["state"] == "available"
    # Someone else's volume is not found by its name; an admin sees it by its id, but a
    # VM takes only its owner's volumes.
    bob = make_user(server, "bob", group="physics")
    assert _run(bob, volumes=["other"]).status_code == 404
    other_id = alice.get("/api/v1/volumes/other").json()["id"]
    admins = _run(server.client(), volumes=[other_id])
    assert admins.status_code == 409
    assert admins.json()["message"] == "volume 'other' belongs to alice"


def test_a_volume_reaches_the_agent_then_is_free_for_the_next_run_on_its_host(
    server: RunningServer, alice: httpx.Client
) -> None:
    admin = server.client()
    node1 = register_host(server, "node1")
    vol = _volume(alice, "data", "64M")
    first = _vm(alice, volumes=["data"])
    a = assigned(node1, first["id"])
    assert a["volumes"] == [{"id": vol["id"], "size_bytes": 64 * 1024**2, "serial": vol["id"]}]
    assert alice.get("/api/v1/volumes/data").json()["host"] == "node1"
    sync(node1, [report(first, "running")])
    assert alice.delete("/api/v1/volumes/data").status_code == 409
    # The job ends: the volume is detached, and stays on node1.
    sync(node1, [report(first, "ended", "poweroff")])
    assert alice.get(f"/api/v1/vms/{first['id']}").json()["volumes"] == []
    vol = alice.get("/api/v1/volumes/data").json()
    assert (vol["state"], vol["vm"], vol["host"]) == ("available", None, "node1")

    # The next run waits for node1 (disabled meanwhile), though another host is free.
    admin.post("/api/v1/hosts/node1/disable")
    node2 = register_host(server, "node2")
    second = _vm(alice, volumes=["data"])

    def waiting() -> str | None:
        reason: str | None = alice.get(f"/api/v1/vms/{second['id']}").json()["pending_reason"]
        return reason if reason and "holding its disk" in reason else None

    assert "1 host is not the host holding its disk or volumes" in eventually(waiting)
    assert (
        node2.post("/api/v1/agent/sync", json={"host": "node2", "vms": []}).json()["assignments"]
        == []
    )
    admin.post("/api/v1/hosts/node1/enable")
    assert assigned(node1, second["id"])["volumes"][0]["id"] == vol["id"]


def test_attach_and_detach_only_while_the_vm_is_stopped(
    server: RunningServer, alice: httpx.Client
) -> None:
    node1 = register_host(server, "node1")
    vm = _vm(alice, mode="single", name="dev")
    assigned(node1, vm["id"])
    sync(node1, [report(vm, "running")])
    _volume(alice, "data")
    running = alice.post(f"/api/v1/vms/{vm['id']}/volumes", json={"volume": "data"})
    assert running.status_code == 409
    assert "it is a single-mode VM in state running" in running.json()["message"]
    assert "gridvm vm stop" in running.json()["hint"]

    alice.post(f"/api/v1/vms/{vm['id']}/stop")
    sync(node1, [report(vm, "stopped", "stopped")])
    attached = alice.post(f"/api/v1/vms/{vm['id']}/volumes", json={"volume": "data"})
    assert attached.status_code == 200, attached.text
    assert (attached.json()["state"], attached.json()["host"]) == ("attached", "node1")
    assert alice.get(f"/api/v1/vms/{vm['id']}").json()["volumes"] == ["data"]
    assert alice.delete("/api/v1/volumes/data").status_code == 409
    # The next start boots with it.
    alice.post(f"/api/v1/vms/{vm['id']}/start")
    wanted = eventually(
        lambda: next(
            (a for a in sync(node1)["assignments"] if a["boot"] == 2 and a["volumes"]), None
        )
    )
    assert wanted["volumes"][0]["serial"] == attached.json()["serial"]
    sync(node1, [report(vm, "running") | {"boot": 2}])
    detach = alice.delete(f"/api/v1/vms/{vm['id']}/volumes/data")
    assert detach.status_code == 409
    alice.post(f"/api/v1/vms/{vm['id']}/stop")
    sync(node1, [report(vm, "stopped", "stopped") | {"boot": 2}])
    detached = alice.delete(f"/api/v1/vms/{vm['id']}/volumes/data")
    assert detached.status_code == 200, detached.text
    assert detached.json()["state"] == "available"
    assert alice.delete(f"/api/v1/vms/{vm['id']}/volumes/data").status_code == 409
    # Multi-mode VMs take volumes only when they are created.
    multi = _vm(alice)
    refused = alice.post(f"/api/v1/vms/{multi['id']}/volumes", json={"volume": "data"})
    assert refused.status_code == 409


def test_terminating_a_vm_frees_its_volume(server: RunningServer, alice: httpx.Client) -> None:
    _volume(alice, "data")
    vm = _vm(alice, volumes=["data"])  # no host: it waits, then is cancelled
    assert alice.post(f"/api/v1/vms/{vm['id']}/terminate").status_code == 202
    assert alice.get("/api/v1/volumes/data").json()["state"] == "available"
    assert _vm(alice, volumes=["data"])["volumes"] == ["data"]


def test_a_used_volume_is_deleted_by_its_hosts_agent(
    server: RunningServer, alice: httpx.Client
) -> None:
    node1 = register_host(server, "node1")
    vol = _volume(alice, "data")
    vm = _vm(alice, volumes=["data"])
    assigned(node1, vm["id"])
    sync(node1, [report(vm, "ended", "poweroff")])
    deleting = alice.delete("/api/v1/volumes/data")
    assert deleting.status_code == 202
    assert deleting.json()["state"] == "deleting"
    # It can no longer be attached.
    assert _run(alice, volumes=["data"]).status_code == 409
    assert sync(node1)["delete_volumes"] == [vol["id"]]
    # Another host cannot make it go.
    other = register_host(server, "node2")
    other.post(
        "/api/v1/agent/sync", json={"host": "node2", "vms": [], "deleted_volumes": [vol["id"]]}
    )
    assert alice.get("/api/v1/volumes/data").json()["state"] == "deleting"
    answer = node1.post(
        "/api/v1/agent/sync", json={"host": "node1", "vms": [], "deleted_volumes": [vol["id"]]}
    ).json()
    assert answer["delete_volumes"] == []
    assert alice.get("/api/v1/volumes/data").status_code == 404
