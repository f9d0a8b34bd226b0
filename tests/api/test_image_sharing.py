"""Publishing images: to a group only by its managers (or admins), publicly only by admins;
admins name the managers."""

from __future__ import annotations

from pathlib import Path

from tests.api.helpers import make_qcow2, make_user, upload
from tests.servers import RunningServer


def test_only_a_manager_of_the_group_publishes_to_it(server: RunningServer, tmp_path: Path) -> None:
    admin = server.client()
    alice = make_user(server, "alice", "physics")
    bob = make_user(server, "bob", "physics")
    disk = make_qcow2(tmp_path / "a.qcow2")
    image = upload(bob, disk, "bobs").json()

    refused = bob.patch("/api/v1/images/bobs", json={"visibility": "group"})
    assert refused.status_code == 403
    assert refused.json()["message"] == "only a manager of group physics may publish images to it"
    assert "no manager yet: ask an admin" in refused.json()["hint"]
    # Nor at upload time; and the refusal comes before any byte is kept.
    early = upload(bob, disk, "direct", visibility="group")
    assert early.status_code == 403
    assert [i["name"] for i in bob.get("/api/v1/images").json()] == ["bobs"]

    made = admin.put("/api/v1/groups/physics/members/alice", json={"manager": True})
    assert made.status_code == 200, made.text
    assert made.json()["managers"] == ["alice"]
    hint = bob.patch("/api/v1/images/bobs", json={"visibility": "group"}).json()["hint"]
    assert hint.startswith("ask a manager of physics: alice")

    # alice publishes her own image; bob's private image she cannot even see.
    assert upload(alice, disk, "tools", visibility="group").status_code == 201
    assert bob.get("/api/v1/images/tools").status_code == 200
    assert (
        alice.patch(f"/api/v1/images/{image['id']}", json={"visibility": "group"}).status_code
        == 404
    )
    # An admin may publish anyone's image to its group; the owner stays the owner.
    shared = admin.patch(f"/api/v1/images/{image['id']}", json={"visibility": "group"}).json()
    assert (shared["visibility"], shared["owner"]) == ("group", "bob")
    # A manager may withdraw an image shared with the group, but not rename it.
    assert alice.patch("/api/v1/images/bobs", json={"name": "mine"}).status_code == 403
    withdrawn = alice.patch("/api/v1/images/bobs", json={"visibility": "private"})
    assert withdrawn.status_code == 200 and withdrawn.json()["owner"] == "bob"
    assert alice.get("/api/v1/images/bobs").status_code == 404
    # Public stays the admins' own act, for managers too.
    public = alice.patch("/api/v1/images/tools", json={"visibility": "public"})
    assert public.status_code == 403 and "only admins" in public.json()["message"]


def test_admins_manage_members_and_managers(server: RunningServer, tmp_path: Path) -> None:
    admin = server.client()
    alice = make_user(server, "alice", "physics")
    make_user(server, "bob", "physics")
    make_user(server, "carol", "biology")

    # A plain member may neither add members nor name managers.
    denied = alice.put("/api/v1/groups/physics/members/carol", json={})
    assert denied.status_code == 403
    assert admin.put("/api/v1/groups/physics/members/alice", json={"manager": True}).json()[
        "managers"
    ] == ["alice"]
    # A manager adds plain members and removes them, but names no managers.
    added = alice.put("/api/v1/groups/physics/members/carol", json={})
    assert added.status_code == 200 and "carol" in added.json()["members"]
    assert (
        alice.put("/api/v1/groups/physics/members/bob", json={"manager": True}).status_code == 403
    )
    assert alice.delete("/api/v1/groups/physics/members/carol").status_code == 200
    # Nobody leaves their primary group; unknown names are 404 with a hint.
    primary = admin.delete("/api/v1/groups/physics/members/bob")
    assert primary.status_code == 409 and "primary group" in primary.json()["message"]
    assert admin.put("/api/v1/groups/physics/members/zed", json={}).status_code == 404
    assert admin.put("/api/v1/groups/nope/members/bob", json={}).status_code == 404
    # An admin takes the manager role back.
    back = admin.put("/api/v1/groups/physics/members/alice", json={"manager": False})
    assert back.json()["managers"] == []
    assert alice.put("/api/v1/groups/physics/members/carol", json={}).status_code == 403
    # Membership counts at once: carol, added to physics, sees its shared images.
    carol = server.client(admin.post("/api/v1/tokens", json={"user": "carol"}).json()["token"])
    image = upload(alice, make_qcow2(tmp_path / "a.qcow2"), "tools").json()
    admin.patch(f"/api/v1/images/{image['id']}", json={"visibility": "group"})
    assert carol.get("/api/v1/images/tools").status_code == 404
    admin.put("/api/v1/groups/physics/members/carol", json={})
    assert carol.get("/api/v1/images/tools").json()["id"] == image["id"]
