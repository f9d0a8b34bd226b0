"""Image versions: a name has versions; runs pin one (NAME:N) or follow the latest (NAME)."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.api.helpers import make_qcow2, make_user, register_host, store_files, upload
from tests.servers import RunningServer


def _three_versions(
    client: httpx.Client, tmp_path: Path, name: str = "env"
) -> list[dict[str, str]]:
    made = []
    for n, size in enumerate(("16M", "32M", "48M")):
        response = upload(client, make_qcow2(tmp_path / f"{name}{n}.qcow2", size), name)
        assert response.status_code == 201, response.text
        made.append(response.json())
    return made


def test_a_name_gets_versions_and_the_list_shows_the_latest(
    server: RunningServer, tmp_path: Path
) -> None:
    admin = server.client()
    v1, v2, v3 = _three_versions(admin, tmp_path)
    assert [v["version"] for v in (v1, v2, v3)] == [1, 2, 3]
    listed = admin.get("/api/v1/images").json()
    assert [(i["id"], i["version"], i["latest"]) for i in listed] == [(v3["id"], 3, True)]
    every = admin.get("/api/v1/images", params={"all_versions": True}).json()
    assert [(i["version"], i["latest"]) for i in every] == [(1, False), (2, False), (3, True)]
    versions = admin.get("/api/v1/images/env/versions").json()
    assert [i["id"] for i in versions] == [v1["id"], v2["id"], v3["id"]]

    assert admin.get("/api/v1/images/env").json()["id"] == v3["id"]
    pinned = admin.get("/api/v1/images/env:2").json()
    assert (pinned["id"], pinned["latest"], pinned["virtual_size"]) == (v2["id"], False, 32 * 2**20)
    assert admin.get(f"/api/v1/images/{v1['id']}").json()["version"] == 1


def test_unknown_versions_and_bad_references_are_clear(
    server: RunningServer, tmp_path: Path
) -> None:
    admin = server.client()
    upload(admin, make_qcow2(tmp_path / "a.qcow2"), "env")
    missing = admin.get("/api/v1/images/env:7")
    assert missing.status_code == 404
    assert "no version 7" in missing.json()["message"]
    assert "gridvm image versions env" in missing.json()["hint"]
    for bad in ("env:0", "env:x", ":3"):
        response = admin.get(f"/api/v1/images/{bad}")
        assert response.status_code == 422, bad
        assert "NAME:N" in response.json()["hint"]


def test_a_run_follows_the_latest_or_pins_a_version_and_records_it(
    server: RunningServer, tmp_path: Path
) -> None:
    admin = server.client()
    register_host(server)
    v1, v2 = (upload(admin, make_qcow2(tmp_path / f"{n}.qcow2"), "env").json() for n in "ab")
    latest = admin.post("/api/v1/vms", json={"image": "env"}).json()["vms"][0]
    pinned = admin.post("/api/v1/vms", json={"image": "env:1"}).json()["vms"][0]
    assert (latest["image"], latest["image_version"]) == (v2["id"], 2)
    assert (pinned["image"], pinned["image_version"]) == (v1["id"], 1)
    # A new version later does not move a VM already asked for.
    v3 = upload(admin, make_qcow2(tmp_path / "c.qcow2"), "env").json()
    assert admin.get(f"/api/v1/vms/{latest['id']}").json()["image_version"] == 2
    newer = admin.post("/api/v1/vms", json={"image": "env", "count": 2}).json()
    assert {vm["image"] for vm in newer["vms"]} == {v3["id"]}


def test_rm_of_a_name_with_several_versions_needs_a_version_or_all(
    server: RunningServer, tmp_path: Path
) -> None:
    admin = server.client()
    _three_versions(admin, tmp_path)
    refused = admin.delete("/api/v1/images/env")
    assert refused.status_code == 409
    body = refused.json()
    assert "3 versions (env:1, env:2, env:3)" in body["message"]
    assert "gridvm image rm env:3" in body["hint"] and "--all-versions" in body["hint"]

    assert admin.delete("/api/v1/images/env:2").status_code == 204
    left = admin.get("/api/v1/images/env/versions").json()
    assert [i["version"] for i in left] == [1, 3]
    # Numbers are not reused: the next upload is version 4.
    v4 = upload(admin, make_qcow2(tmp_path / "d.qcow2", "8M"), "env").json()
    assert v4["version"] == 4

    assert admin.post("/api/v1/vms", json={"image": "env:1"}).status_code == 201  # pending
    busy = admin.delete("/api/v1/images/env", params={"all_versions": True})
    assert busy.status_code == 409 and "env:1 is used by 1 VM" in busy.json()["message"]
    assert len(admin.get("/api/v1/images/env/versions").json()) == 3, "nothing was deleted"
    for vm in admin.get("/api/v1/vms").json():
        admin.post(f"/api/v1/vms/{vm['id']}/terminate")
    gone = admin.delete("/api/v1/images/env", params={"all_versions": True})
    assert gone.status_code == 204, gone.text
    assert admin.get("/api/v1/images", params={"all_versions": True}).json() == []
    assert store_files(server) == []


def test_rm_of_a_name_with_one_version_deletes_it(server: RunningServer, tmp_path: Path) -> None:
    admin = server.client()
    upload(admin, make_qcow2(tmp_path / "a.qcow2"), "solo")
    assert admin.delete("/api/v1/images/solo").status_code == 204
    assert admin.get("/api/v1/images/solo").status_code == 404


def test_rename_moves_every_version_of_the_name(server: RunningServer, tmp_path: Path) -> None:
    admin = server.client()
    v1, v2, v3 = _three_versions(admin, tmp_path)
    upload(admin, make_qcow2(tmp_path / "other.qcow2"), "taken")
    clash = admin.patch("/api/v1/images/env:1", json={"name": "taken"})
    assert clash.status_code == 409
    renamed = admin.patch("/api/v1/images/env:1", json={"name": "analysis"})
    assert (renamed.json()["name"], renamed.json()["version"]) == ("analysis", 1)
    assert admin.get("/api/v1/images/env").status_code == 404
    versions = admin.get("/api/v1/images/analysis/versions").json()
    assert [(i["id"], i["version"]) for i in versions] == [
        (v1["id"], 1),
        (v2["id"], 2),
        (v3["id"], 3),
    ]


def test_others_follow_the_latest_version_shared_with_them(
    server: RunningServer, tmp_path: Path
) -> None:
    alice = make_user(server, "alice", "physics")
    bob = make_user(server, "bob", "physics")
    server.client().put("/api/v1/groups/physics/members/alice", json={"manager": True})
    v1 = upload(alice, make_qcow2(tmp_path / "a.qcow2"), "tool", visibility="group").json()
    v2 = upload(alice, make_qcow2(tmp_path / "b.qcow2"), "tool").json()  # private
    assert v2["version"] == 2
    # bob sees only what is shared with him: version 1 is his "latest".
    seen = bob.get("/api/v1/images/tool").json()
    assert (seen["id"], seen["latest"]) == (v1["id"], True)
    assert alice.get(f"/api/v1/images/{v1['id']}").json()["latest"] is False
    assert [i["version"] for i in bob.get("/api/v1/images/tool/versions").json()] == [1]
    assert bob.get("/api/v1/images/tool:2").status_code == 404
    assert alice.patch("/api/v1/images/tool:2", json={"visibility": "group"}).status_code == 200
    assert bob.get("/api/v1/images/tool").json()["id"] == v2["id"]
    # bob's own image of that name comes first for him.
    mine = upload(bob, make_qcow2(tmp_path / "c.qcow2"), "tool").json()
    assert (mine["version"], bob.get("/api/v1/images/tool").json()["id"]) == (1, mine["id"])
    assert bob.get(f"/api/v1/images/{v2['id']}").status_code == 200
