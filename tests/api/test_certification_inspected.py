"""Certification and deploy-time refusals on real disks, inspected and scanned at upload.

The disks are real ext4 file systems (built with mkfs.ext4 -d), read by the upload-time
inspection; the feed is the project's OSV subset (tests/data/osv).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.helpers import upload
from tests.guest_disks import debian_root, dpkg_entry, ext4_disk, ssh_key, stage
from tests.servers import RunningServer, run_server

FEED = Path(__file__).parent.parent / "data" / "osv" / "debian-bookworm-subset.json"


@pytest.fixture
def scanned_server(tmp_path: Path) -> Iterator[RunningServer]:
    with run_server(tmp_path / "server", vuln_feed=str(FEED)) as running:
        yield running


def _upload(admin: httpx.Client, disk: Path, name: str) -> str:
    made = upload(admin, disk, name)
    assert made.status_code == 201, made.text
    image_id: str = made.json()["id"]
    return image_id


def _certify(admin: httpx.Client, ref: str) -> httpx.Response:
    return admin.post(f"/api/v1/images/{ref}/certifications", json={"reason": "reviewed"})


def _run(admin: httpx.Client, image: str, zone: str | None = None) -> httpx.Response:
    body: dict[str, object] = {"image": image, "memory_mb": 128}
    if zone:
        body["zone"] = zone
    return admin.post("/api/v1/vms", json=body)


def test_real_images_certified_or_refused(scanned_server: RunningServer, tmp_path: Path) -> None:
    admin = scanned_server.client()
    clean_root = debian_root(tmp_path, "clean", [dpkg_entry("bash", "5.2.15-2+b2")])
    clean = _upload(admin, ext4_disk(tmp_path, "clean", clean_root), "clean")
    assert _certify(admin, clean).status_code == 201
    assert _run(admin, clean).json()["vms"][0]["zone"] == "trusted"

    # glibc before 2.36-9+deb12u3: CVE-2023-4911, high in the feed.
    old_root = debian_root(tmp_path, "old", [dpkg_entry("libc6", "2.36-9+deb12u1", "glibc")])
    old = _upload(admin, ext4_disk(tmp_path, "old", old_root), "old-glibc")
    refused = _certify(admin, old)
    assert refused.status_code == 409
    message = refused.json()["message"]
    assert "vulnerabilities at or above high: DEBIAN-CVE-2023-4911 (high" in message
    run = _run(admin, old, "dmz")
    assert run.status_code == 403 and "has a high vulnerability" in run.json()["message"]

    # A private SSH key left in the image: never certified, never deployed.
    keyed_root = debian_root(tmp_path, "keyed", [dpkg_entry("bash", "5.2.15-2+b2")])
    stage(keyed_root, {"/root/.ssh/id_ed25519": ssh_key(tmp_path / "key")})
    keyed = _upload(admin, ext4_disk(tmp_path, "keyed", keyed_root), "keyed")
    refused = _certify(admin, keyed)
    assert "carries credentials" in refused.json()["message"]
    assert "/root/.ssh/id_ed25519" in refused.json()["message"]
    run = _run(admin, keyed, "dmz")
    assert run.status_code == 403 and "carries credentials" in run.json()["message"]
