from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from gridvm.common.config import SiteLimits
from tests.api.helpers import (
    eventually,
    make_qcow2,
    make_user,
    register_host,
    store_files,
    upload,
)
from tests.servers import RunningServer, run_server


def test_upload_list_show_download_rename_share_delete(
    server: RunningServer, tmp_path: Path
) -> None:
    admin = server.client()
    made = upload(admin, make_qcow2(tmp_path / "a.qcow2"), "analysis")
    assert made.status_code == 201, made.text
    image = made.json()
    assert (image["format"], image["virtual_size"], image["visibility"]) == (
        "qcow2",
        64 * 2**20,
        "private",
    )
    assert [i["name"] for i in admin.get("/api/v1/images").json()] == ["analysis"]
    assert admin.get(f"/api/v1/images/{image['id']}").json()["digest"] == image["digest"]
    content = admin.get("/api/v1/images/analysis/content")
    assert content.status_code == 200
    (tmp_path / "down.qcow2").write_bytes(content.content)
    info = subprocess.run(
        ["qemu-img", "info", "-f", "qcow2", str(tmp_path / "down.qcow2")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "virtual size: 64 MiB" in info.stdout
    partial = admin.get("/api/v1/images/analysis/content", headers={"Range": "bytes=0-3"})
    assert partial.status_code == 206 and partial.content == b"QFI\xfb"
    renamed = admin.patch("/api/v1/images/analysis", json={"name": "analysis-v2"})
    assert renamed.json()["name"] == "analysis-v2"
    shared = admin.patch("/api/v1/images/analysis-v2", json={"visibility": "group"})
    assert shared.json()["visibility"] == "group"
    assert admin.delete("/api/v1/images/analysis-v2").status_code == 204
    assert admin.get("/api/v1/images").json() == []
    assert store_files(server) == []


def test_raw_vmdk_and_vdi_are_converted_to_qcow2(server: RunningServer, tmp_path: Path) -> None:
    admin = server.client()
    source = make_qcow2(tmp_path / "src.qcow2", "32M")
    raw = tmp_path / "disk.raw"
    subprocess.run(["mkfs.ext4", "-q", "-F", str(raw), "32M"], check=True, capture_output=True)
    for fmt, path in [("raw", raw), ("vmdk", tmp_path / "d.vmdk"), ("vdi", tmp_path / "d.vdi")]:
        if fmt != "raw":
            subprocess.run(
                ["qemu-img", "convert", "-f", "qcow2", "-O", fmt, str(source), str(path)],
                check=True,
            )
        made = upload(admin, path, f"from-{fmt}")
        assert made.status_code == 201, made.text
        assert (made.json()["uploaded_format"], made.json()["format"]) == (fmt, "qcow2")


def test_users_see_their_own_group_and_public_images_only(
    server: RunningServer, tmp_path: Path
) -> None:
    alice = make_user(server, "alice", "physics")
    bob = make_user(server, "bob", "physics")
    carol = make_user(server, "carol", "biology")
    # Publishing to a group is its managers' act.
    manage = server.client().put("/api/v1/groups/physics/members/alice", json={"manager": True})
    assert manage.status_code == 200, manage.text
    disk = make_qcow2(tmp_path / "a.qcow2")
    private = upload(alice, disk, "secret").json()
    assert bob.get(f"/api/v1/images/{private['id']}").status_code == 404
    assert bob.get("/api/v1/images/secret").status_code == 404
    assert bob.get(f"/api/v1/images/{private['id']}/content").status_code == 404
    alice.patch("/api/v1/images/secret", json={"visibility": "group"})
    assert bob.get(f"/api/v1/images/{private['id']}").status_code == 200
    assert carol.get(f"/api/v1/images/{private['id']}").status_code == 404
    assert [i["name"] for i in carol.get("/api/v1/images").json()] == []
    # Only admins publish to everyone; others may not change what is not theirs.
    assert alice.patch("/api/v1/images/secret", json={"visibility": "public"}).status_code == 403
    assert bob.delete(f"/api/v1/images/{private['id']}").status_code == 403


def _refused(server: RunningServer, path: Path, name: str = "bad") -> dict[str, str]:
    response = upload(server.client(), path, name)
    assert 400 <= response.status_code < 500, response.text
    assert server.client().get("/api/v1/images").json() == []
    assert store_files(server) == [], "a refused upload left files behind"
    body: dict[str, str] = response.json()
    return body


def test_empty_upload_is_refused(server: RunningServer, tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")
    assert "empty" in _refused(server, tmp_path / "empty")["message"]


def test_text_file_is_not_a_disk_image(server: RunningServer, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello\n" * 1000)
    body = _refused(server, tmp_path / "notes.txt")
    assert "not a disk image" in body["message"]
    assert "qcow2" in body["hint"]


def test_truncated_qcow2_is_refused(server: RunningServer, tmp_path: Path) -> None:
    disk = make_qcow2(tmp_path / "a.qcow2", "1G")
    subprocess.run(
        ["qemu-io", "-f", "qcow2", "-c", "write -P 7 0 4M", str(disk)],
        check=True,
        capture_output=True,
    )
    (tmp_path / "cut.qcow2").write_bytes(disk.read_bytes()[:300_000])
    _refused(server, tmp_path / "cut.qcow2")


def test_qcow2_with_a_backing_file_is_refused(server: RunningServer, tmp_path: Path) -> None:
    evil = tmp_path / "evil.qcow2"
    subprocess.run(
        [
            "qemu-img",
            "create",
            "-q",
            "-f",
            "qcow2",
            "-F",
            "raw",
            "-b",
            "/etc/shadow",
            str(evil),
            "1M",
        ],
        check=True,
    )
    assert "backing" in _refused(server, evil)["message"]


def test_bad_names_are_refused_before_reading_the_upload(
    server: RunningServer, tmp_path: Path
) -> None:
    disk = make_qcow2(tmp_path / "a.qcow2")
    for name in ["../../etc/passwd", "a/b", ".."]:
        assert _refused(server, disk, name)["error"] == "invalid_input"


def test_virtual_size_above_the_site_limit_is_refused(tmp_path: Path) -> None:
    with run_server(tmp_path / "s", limits=SiteLimits(max_image_virtual_size=2**30)) as server:
        body = _refused(server, make_qcow2(tmp_path / "big.qcow2", "4G"))
        assert "4 GiB" in body["message"] and "1 GiB" in body["message"]


def test_same_name_twice_makes_a_second_version_and_keeps_the_first(
    server: RunningServer, tmp_path: Path
) -> None:
    admin = server.client()
    first = upload(admin, make_qcow2(tmp_path / "a.qcow2"), "dup").json()
    again = upload(admin, make_qcow2(tmp_path / "b.qcow2", "32M"), "dup")
    assert again.status_code == 201, again.text
    assert (first["version"], again.json()["version"]) == (1, 2)
    listed = admin.get("/api/v1/images", params={"all_versions": True}).json()
    assert [(i["id"], i["latest"]) for i in listed] == [
        (first["id"], False),
        (again.json()["id"], True),
    ]


def test_image_in_use_cannot_be_deleted(server: RunningServer, tmp_path: Path) -> None:
    admin = server.client()
    upload(admin, make_qcow2(tmp_path / "a.qcow2"), "busy")
    register_host(server)
    assert admin.post("/api/v1/vms", json={"image": "busy"}).status_code == 201
    refused = admin.delete("/api/v1/images/busy")
    assert refused.status_code == 409
    assert "used by 1 VM" in refused.json()["message"]
    assert admin.get("/api/v1/images/busy").status_code == 200


@pytest.mark.parametrize("ref", ["nope", "img-000000000000"])
def test_unknown_image_is_404_with_hint(server: RunningServer, ref: str) -> None:
    response = server.client().get(f"/api/v1/images/{ref}")
    assert response.status_code == 404
    assert "gridvm image list" in response.json()["hint"]


def test_image_can_be_deleted_once_its_vms_have_ended(
    server: RunningServer, tmp_path: Path
) -> None:
    admin = server.client()
    upload(admin, make_qcow2(tmp_path / "a.qcow2"), "old")
    vm = admin.post("/api/v1/vms", json={"image": "old"}).json()["vms"][0]
    admin.post(f"/api/v1/vms/{vm['id']}/terminate")
    assert admin.delete("/api/v1/images/old").status_code == 204
    history = admin.get(f"/api/v1/vms/{vm['id']}").json()
    assert (history["image"], history["image_name"], history["state"]) == (None, "old", "cancelled")


def test_admin_renaming_a_users_image_onto_another_of_theirs_is_a_conflict(
    server: RunningServer, tmp_path: Path
) -> None:
    alice = make_user(server, "alice")
    upload(alice, make_qcow2(tmp_path / "a.qcow2"), "one")
    upload(alice, make_qcow2(tmp_path / "b.qcow2", "32M"), "two")
    response = server.client().patch(
        "/api/v1/images/" + alice.get("/api/v1/images/one").json()["id"], json={"name": "two"}
    )
    assert response.status_code == 409
    assert "already" in response.json()["message"]


def test_downloads_honour_byte_ranges(server: RunningServer, tmp_path: Path) -> None:
    admin = server.client()
    image = upload(admin, make_qcow2(tmp_path / "a.qcow2"), "ranged").json()
    whole = admin.get("/api/v1/images/ranged/content").content
    assert len(whole) == image["size"]
    middle = admin.get("/api/v1/images/ranged/content", headers={"Range": "bytes=100-199"})
    assert middle.status_code == 206
    assert middle.headers["content-range"] == f"bytes 100-199/{image['size']}"
    assert middle.content == whole[100:200]
    tail = admin.get("/api/v1/images/ranged/content", headers={"Range": "bytes=1000-"})
    assert tail.status_code == 206 and tail.content == whole[1000:]
    beyond = admin.get(
        "/api/v1/images/ranged/content", headers={"Range": f"bytes={image['size'] + 10}-"}
    )
    assert beyond.status_code == 416


def test_raw_export_is_the_same_disk_and_its_temp_file_is_removed(
    server: RunningServer, tmp_path: Path
) -> None:
    admin = server.client()
    disk = make_qcow2(tmp_path / "a.qcow2", "32M")
    subprocess.run(
        ["qemu-io", "-f", "qcow2", "-c", "write -P 5 4M 1M", str(disk)],
        check=True,
        capture_output=True,
    )
    upload(admin, disk, "exported")
    response = admin.get("/api/v1/images/exported/content", params={"format": "raw"})
    assert response.status_code == 200
    assert response.headers["content-disposition"].endswith('exported-1.raw"')
    raw = tmp_path / "disk.raw"
    raw.write_bytes(response.content)
    assert raw.stat().st_size == 32 * 2**20
    compare = subprocess.run(
        ["qemu-img", "compare", "-f", "raw", "-F", "qcow2", str(raw), str(disk)],
        capture_output=True,
        text=True,
    )
    assert compare.returncode == 0, compare.stdout + compare.stderr
    part = admin.get(
        "/api/v1/images/exported/content",
        params={"format": "raw"},
        headers={"Range": f"bytes={4 * 2**20}-{4 * 2**20 + 3}"},
    )
    assert (part.status_code, part.content) == (206, b"\x05" * 4)
    # Only the stored qcow2 is left in the store: the exports were removed after sending.
    eventually(lambda: [p.parent.name for p in store_files(server)] == ["sha256"])
    assert (
        admin.get("/api/v1/images/exported/content", params={"format": "vmdk"}).status_code == 422
    )


@pytest.mark.parametrize("fmt", ["vmdk", "vdi"])
def test_corrupt_vmdk_and_vdi_are_refused_and_leave_nothing(
    server: RunningServer, tmp_path: Path, fmt: str
) -> None:
    source = make_qcow2(tmp_path / "src.qcow2", "32M")
    subprocess.run(
        ["qemu-io", "-f", "qcow2", "-c", "write -P 3 0 8M", str(source)],
        check=True,
        capture_output=True,
    )
    good = tmp_path / f"good.{fmt}"
    subprocess.run(
        ["qemu-img", "convert", "-f", "qcow2", "-O", fmt, str(source), str(good)], check=True
    )
    cut = tmp_path / f"cut.{fmt}"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    body = _refused(server, cut, f"cut-{fmt}")
    assert body["error"] == "image_rejected", body
    garbled = bytearray(good.read_bytes())
    garbled[512:4096] = b"\xff" * (4096 - 512)  # headers/tables overwritten
    (tmp_path / f"garbled.{fmt}").write_bytes(bytes(garbled))
    _refused(server, tmp_path / f"garbled.{fmt}", f"garbled-{fmt}")
