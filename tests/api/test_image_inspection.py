"""Inspection and vulnerability scans of uploaded images, through the REST API."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gridvm.services.vulnerabilities import image_worst_severity
from gridvm.store.models import ImageInspection
from tests.api.helpers import (
    assigned,
    eventually,
    make_user,
    register_host,
    run_then_stop,
    upload,
)
from tests.guest_disks import debian_root, dpkg_entry, ext4_disk, garbage_disk, ssh_key, stage
from tests.postgres import new_database
from tests.scanned_disks import OSV_FEED
from tests.servers import RunningServer, run_server


def old_debian(tmp: Path) -> Path:
    """Debian 12 with glibc and openssl from before their security updates."""
    root = debian_root(
        tmp,
        "old",
        [
            dpkg_entry("libc6", "2.36-9+deb12u1", source="glibc"),
            dpkg_entry("libssl3", "3.0.11-1~deb12u1", source="openssl"),
            dpkg_entry("curl", "7.88.1-10+deb12u5"),
        ],
    )
    return ext4_disk(tmp, "old", root)


def patched_debian(tmp: Path) -> Path:
    root = debian_root(
        tmp,
        "patched",
        [
            dpkg_entry("libc6", "2.36-9+deb12u3", source="glibc"),
            dpkg_entry("libssl3", "3.0.11-1~deb12u2", source="openssl"),
            dpkg_entry("curl", "7.88.1-10+deb12u5"),
        ],
    )
    return ext4_disk(tmp, "patched", root)


@pytest.fixture
def feed(tmp_path: Path) -> Path:
    path = tmp_path / "feed.json"
    shutil.copyfile(OSV_FEED, path)
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path: Path, feed: Path) -> Iterator[RunningServer]:
    url = None
    if request.param == "postgresql":
        url = new_database(request.getfixturevalue("pg_cluster"))
    with run_server(
        tmp_path / "server", database_url=url, vuln_feed=str(feed), vuln_feed_interval_s=0.2
    ) as s:
        yield s


def inspection(client: httpx.Client, ref: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/images/{ref}/inspection")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def vulns(client: httpx.Client, ref: str, **params: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/images/{ref}/vulnerabilities", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_upload_is_inspected_and_scanned(server: RunningServer, tmp_path: Path) -> None:
    admin = server.client()
    assert upload(admin, old_debian(tmp_path), "old").status_code == 201
    found = inspection(admin, "old")
    assert found["state"] == "ok"
    assert (found["os_id"], found["os_version"]) == ("debian", "12")
    assert found["package_count"] == 3
    assert found["findings"] == []
    assert found["worst_severity"] == "high"
    scan = vulns(admin, "old")
    assert scan["scanned"] and scan["vuln_feed"].startswith("sha256:")
    assert {(v["id"], v["package"]) for v in scan["vulns"]} == {
        ("DSA-5514-1", "libc6"),
        ("DEBIAN-CVE-2023-4911", "libc6"),
        ("DSA-5532-1", "libssl3"),
    }
    libc = next(v for v in scan["vulns"] if v["id"] == "DSA-5514-1")
    assert (libc["installed"], libc["fixed"], libc["source"]) == (
        "2.36-9+deb12u1",
        "2.36-9+deb12u3",
        "glibc",
    )
    high = vulns(admin, "old", min_severity="high")["vulns"]
    assert [v["id"] for v in high] == ["DEBIAN-CVE-2023-4911"]


def test_patched_image_has_no_vulnerabilities(server: RunningServer, tmp_path: Path) -> None:
    admin = server.client()
    assert upload(admin, patched_debian(tmp_path), "patched").status_code == 201
    scan = vulns(admin, "patched")
    assert scan["scanned"] and scan["vulns"] == [] and scan["worst_severity"] is None


def test_feed_change_rescans_every_image(server: RunningServer, tmp_path: Path, feed: Path) -> None:
    admin = server.client()
    assert upload(admin, old_debian(tmp_path), "old").status_code == 201
    assert len(vulns(admin, "old")["vulns"]) == 3
    records = json.loads(feed.read_text())
    feed.write_text(json.dumps([r for r in records if r["id"] == "DSA-5532-1"]))
    eventually(lambda: [v["id"] for v in vulns(admin, "old")["vulns"]] == ["DSA-5532-1"])
    assert vulns(admin, "old")["worst_severity"] == "unknown"
    feed.write_text(json.dumps(records))
    eventually(lambda: len(vulns(admin, "old")["vulns"]) == 3)
    assert inspection(admin, "old")["worst_severity"] == "high"


def test_credentials_found_and_reinspection(server: RunningServer, tmp_path: Path) -> None:
    alice = make_user(server, "alice")
    root = stage(tmp_path / "root", {"/etc/os-release": "ID=debian\nVERSION_ID=12\n"})
    assert upload(alice, ext4_disk(tmp_path, "clean", root), "work").status_code == 201
    assert inspection(alice, "work")["findings"] == []
    # Another user cannot see it, let alone inspect it again.
    bob = make_user(server, "bob", group="chemistry")
    assert bob.get("/api/v1/images/work/inspection").status_code == 404
    assert bob.post("/api/v1/images/work/inspection").status_code == 404
    # Its owner may inspect again; the result replaces the old one.
    again = alice.post("/api/v1/images/work/inspection")
    assert again.status_code == 200, again.text
    assert again.json()["state"] == "ok"

    keyed = stage(tmp_path / "keyed", {"/root/.ssh/id_ed25519": ssh_key(tmp_path / "k")})
    assert upload(alice, ext4_disk(tmp_path, "keyed", keyed), "keyed").status_code == 201
    assert inspection(alice, "keyed")["findings"] == [
        {
            "kind": "ssh_private_key",
            "path": "/root/.ssh/id_ed25519",
            "detail": "OpenSSH private key, not protected by a passphrase",
        }
    ]


def test_officer_may_reinspect_shared_images(server: RunningServer, tmp_path: Path) -> None:
    alice = make_user(server, "alice")
    root = stage(tmp_path / "root", {"/etc/os-release": "ID=debian\n"})
    assert upload(alice, ext4_disk(tmp_path, "d", root), "shared").status_code == 201
    # Publishing to the group is a group manager's act.
    server.client().put("/api/v1/groups/physics/members/alice", json={"manager": True})
    assert alice.patch("/api/v1/images/shared", json={"visibility": "group"}).status_code == 200
    carol = make_user(server, "carol")  # same group: sees the image, may not re-inspect it
    refused = carol.post("/api/v1/images/shared/inspection")
    assert refused.status_code == 403
    assert "security officer" in refused.json()["message"]
    admin = server.client()
    assert (
        admin.post(
            "/api/v1/users", json={"name": "olga", "group": "physics", "role": "officer"}
        ).status_code
        == 201
    )
    olga = server.client(admin.post("/api/v1/tokens", json={"user": "olga"}).json()["token"])
    assert olga.post("/api/v1/images/shared/inspection").status_code == 200


def test_unreadable_image_is_stored_but_says_why(server: RunningServer, tmp_path: Path) -> None:
    admin = server.client()
    made = upload(admin, garbage_disk(tmp_path, "noise"), "noise")
    assert made.status_code == 201, made.text
    found = inspection(admin, "noise")
    assert found["state"] == "unreadable"
    assert "no file system or partition table" in found["error"]
    assert found["vulns"] is None
    assert vulns(admin, "noise")["scanned"] is False


def test_unknown_image(server: RunningServer) -> None:
    response = server.client().get("/api/v1/images/nothing/inspection")
    assert response.status_code == 404
    assert response.json()["message"] == "no image 'nothing'"


def test_site_template_is_inspected(tmp_path: Path, starter_dir: Path) -> None:
    with run_server(tmp_path / "server", starter_dir=starter_dir) as running:
        found = inspection(running.client(), "tiny")
        assert found["state"] == "ok"
        assert found["findings"] == [] and found["package_count"] == 0


def test_images_without_inspection_are_inspected_by_the_watcher(
    server: RunningServer, tmp_path: Path
) -> None:
    admin = server.client()
    image = upload(admin, old_debian(tmp_path), "old").json()
    with server.services.db.session() as s:  # as if stored before inspection existed
        s.delete(s.get_one(ImageInspection, image["id"]))
    assert admin.get("/api/v1/images/old/inspection").status_code == 404
    eventually(lambda: admin.get("/api/v1/images/old/inspection").status_code == 200)
    eventually(lambda: vulns(admin, "old")["scanned"])
    with server.services.db.session() as s:  # what certification asks
        assert image_worst_severity(s, image["id"]) == "high"


def test_vm_save_inspects_the_saved_disk(server: RunningServer, tmp_path: Path) -> None:
    admin = server.client()
    assert upload(admin, patched_debian(tmp_path), "base").status_code == 201
    agent = register_host(server)
    vm = admin.post("/api/v1/vms", json={"image": "base", "mode": "single"}).json()["vms"][0]
    run_then_stop(admin, agent, vm)
    assert admin.post(f"/api/v1/vms/{vm['id']}/save", json={"name": "mine"}).status_code == 202
    assigned(agent, vm["id"])
    # The user left a key in the VM: the saved disk carries it.
    changed = debian_root(tmp_path, "changed", [dpkg_entry("libc6", "2.36-9+deb12u1", "glibc")])
    stage(changed, {"/root/.ssh/id_ed25519": ssh_key(tmp_path / "left-behind")})
    disk = ext4_disk(tmp_path, "changed", changed)
    saved = agent.put(f"/api/v1/agent/vms/{vm['id']}/disk-image", content=disk.read_bytes())
    assert saved.status_code == 200, saved.text
    found = inspection(admin, "mine")
    assert [f["path"] for f in found["findings"]] == ["/root/.ssh/id_ed25519"]
    assert found["worst_severity"] == "high"
