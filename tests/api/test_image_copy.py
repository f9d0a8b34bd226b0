"""Copying images: POST /images/{ref}/copy makes the caller's own private image on the same
stored disk; a copy of a template or certified image is certified, of a user image a user one."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.api.helpers import make_qcow2, make_user, store_files, upload
from tests.servers import RunningServer


def _template(server: RunningServer, tmp_path: Path, name: str = "base") -> dict[str, object]:
    admin = server.client()
    assert upload(admin, make_qcow2(tmp_path / f"{name}.qcow2"), name).status_code == 201
    made = admin.post(f"/api/v1/images/{name}/template")
    assert made.status_code == 200, made.text
    body: dict[str, object] = made.json()
    return body


def _copy(client: httpx.Client, ref: str, name: str) -> httpx.Response:
    return client.post(f"/api/v1/images/{ref}/copy", json={"name": name})


def test_a_copy_of_a_template_is_the_users_certified_image_on_the_same_disk(
    server: RunningServer, tmp_path: Path
) -> None:
    template = _template(server, tmp_path)
    alice = make_user(server, "alice")
    made = _copy(alice, "base", "mine")
    assert made.status_code == 201, made.text
    copy = made.json()
    assert copy["id"] != template["id"]
    assert (copy["name"], copy["version"], copy["owner"], copy["group"]) == (
        "mine",
        1,
        "alice",
        "physics",
    )
    assert (copy["visibility"], copy["trust"], copy["certification"]) == (
        "private",
        "certified",
        "valid",
    )
    for field in ("digest", "size", "virtual_size", "boot_mode", "format"):
        assert copy[field] == template[field], field
    assert alice.get("/api/v1/images/mine").json()["id"] == copy["id"]

    history = alice.get("/api/v1/images/mine/certifications").json()
    assert len(history) == 1
    assert history[0]["source"] == "construction"
    assert history[0]["reason"] == (
        f"byte-identical copy of site template base:1 ({template['id']})"
    )
    # What inspecting the disk found goes with it.
    inspected = alice.get("/api/v1/images/mine/inspection")
    assert inspected.status_code == 200, inspected.text
    assert inspected.json()["image_id"] == copy["id"]
    assert store_files(server) and len(store_files(server)) == 1  # one disk, two images


def test_deleting_either_image_keeps_the_others_disk(server: RunningServer, tmp_path: Path) -> None:
    _template(server, tmp_path)
    admin = server.client()
    alice = make_user(server, "alice")
    original = admin.get("/api/v1/images/base/content").content
    assert _copy(alice, "base", "mine").status_code == 201

    assert admin.delete("/api/v1/images/base").status_code == 204
    assert alice.get("/api/v1/images/mine/content").content == original
    assert _copy(alice, "mine", "again").status_code == 201
    assert alice.delete("/api/v1/images/mine").status_code == 204
    assert alice.get("/api/v1/images/again/content").content == original
    assert alice.delete("/api/v1/images/again").status_code == 204
    assert store_files(server) == []


def test_a_copy_of_a_user_image_is_a_user_image_and_an_existing_name_a_new_version(
    server: RunningServer, tmp_path: Path
) -> None:
    alice = make_user(server, "alice")
    first = upload(alice, make_qcow2(tmp_path / "a.qcow2"), "work").json()
    copy = _copy(alice, "work", "work").json()
    assert (copy["name"], copy["version"], copy["trust"]) == ("work", 2, "user")
    assert copy["digest"] == first["digest"]
    assert alice.get("/api/v1/images/work/certifications").json() == []


def test_a_copy_counts_in_the_storage_quota(server: RunningServer, tmp_path: Path) -> None:
    _template(server, tmp_path)
    admin = server.client()
    alice = make_user(server, "alice")
    assert admin.put("/api/v1/quotas/user/alice", json={"images": 1}).status_code == 200
    assert _copy(alice, "base", "one").status_code == 201
    refused = _copy(alice, "base", "two")
    assert refused.status_code == 413
    message = refused.json()["message"]
    assert message == "image storage quota: user alice may keep 1 images and has 1"
    assert "delete images you no longer need" in refused.json()["hint"]
    assert [i["name"] for i in alice.get("/api/v1/images").json() if i["owner"] == "alice"] == [
        "one"
    ]


def test_what_cannot_be_copied_is_refused_clearly(server: RunningServer, tmp_path: Path) -> None:
    alice = make_user(server, "alice")
    bob = make_user(server, "bob")
    upload(bob, make_qcow2(tmp_path / "b.qcow2"), "secret")
    hidden = _copy(alice, "secret", "mine")
    assert hidden.status_code == 404 and "secret" in hidden.json()["message"]
    upload(alice, make_qcow2(tmp_path / "a.qcow2"), "work")
    bad = _copy(alice, "work", "no spaces allowed")
    assert bad.status_code == 422 and "image name" in bad.json()["message"]
    assert [i["name"] for i in alice.get("/api/v1/images").json()] == ["work"]
