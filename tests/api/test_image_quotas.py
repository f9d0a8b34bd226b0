"""Image storage quotas: bytes and number of images per user and group; an upload (or a
saved VM disk) over the quota is refused and leaves nothing behind."""

from __future__ import annotations

from pathlib import Path

from tests.api.helpers import make_qcow2, make_user, store_files, upload
from tests.servers import RunningServer


def test_an_image_count_quota_refuses_the_next_upload_and_keeps_nothing(
    server: RunningServer, tmp_path: Path
) -> None:
    admin = server.client()
    alice = make_user(server, "alice", group="physics")
    assert admin.put("/api/v1/quotas/user/alice", json={"images": 1}).status_code == 200
    disk = make_qcow2(tmp_path / "a.qcow2")
    assert upload(alice, disk, "first").status_code == 201
    before = sorted(store_files(server))
    refused = upload(alice, disk, "second")
    assert refused.status_code == 413, refused.text
    assert (
        refused.json()["message"] == "image storage quota: user alice may keep 1 images and has 1"
    )
    assert "gridvm image rm" in refused.json()["hint"]
    assert sorted(store_files(server)) == before
    assert [i["name"] for i in alice.get("/api/v1/images").json() if i["owner"] == "alice"] == [
        "first"
    ]
    shown = alice.get("/api/v1/quotas").json()[0]
    assert (shown["images"], shown["used_images"]) == (1, 1)
    assert shown["used_image_bytes"] > 0


def test_a_group_byte_quota_covers_its_members_and_sub_groups(
    server: RunningServer, tmp_path: Path
) -> None:
    admin = server.client()
    admin.post("/api/v1/groups", json={"name": "physics"})
    admin.post("/api/v1/groups", json={"name": "cms", "parent": "physics"})
    alice = make_user(server, "alice", group="physics")
    bob = make_user(server, "bob", group="cms")
    disk = make_qcow2(tmp_path / "a.qcow2")
    assert upload(alice, disk, "a1").status_code == 201
    size = alice.get("/api/v1/images/a1").json()["size"]
    # Room for two such images in all: alice's and one of bob's (a sub-group's).
    admin.put("/api/v1/quotas/group/physics", json={"image_bytes": 2 * size + size // 2})
    assert upload(bob, disk, "b1").status_code == 201
    refused = upload(bob, disk, "b2")
    assert refused.status_code == 413
    assert "group physics may store" in refused.json()["message"]
    admin.delete(f"/api/v1/images/{alice.get('/api/v1/images/a1').json()['id']}")
    assert upload(bob, disk, "b2").status_code == 201


def test_quotas_of_other_users_do_not_apply(server: RunningServer, tmp_path: Path) -> None:
    admin = server.client()
    make_user(server, "alice", group="physics")
    bob = make_user(server, "bob", group="bio")
    admin.put("/api/v1/quotas/user/alice", json={"images": 0})
    assert upload(bob, make_qcow2(tmp_path / "b.qcow2"), "mine").status_code == 201


def test_storage_quota_values_are_checked(server: RunningServer) -> None:
    admin = server.client()
    make_user(server, "alice", group="physics")
    bad = admin.put("/api/v1/quotas/user/alice", json={"image_bytes": -1})
    assert bad.status_code == 422
    assert isinstance(bad.json()["message"], str)
