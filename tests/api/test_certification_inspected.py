"""Certification and deploy-time refusals on real disks, inspected and scanned at upload.

The disks are real ext4 file systems (built with mkfs.ext4 -d), read by the upload-time
inspection; the feed is the project's OSV subset (tests/data/osv, see tests/scanned_disks.py).
"""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.api.helpers import upload
from tests.scanned_disks import clean_debian, keyed_debian, old_glibc_debian
from tests.servers import RunningServer


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
    clean = _upload(admin, clean_debian(tmp_path, "clean"), "clean")
    assert _certify(admin, clean).status_code == 201
    assert _run(admin, clean).json()["vms"][0]["zone"] == "trusted"

    # glibc before 2.36-9+deb12u3: CVE-2023-4911, high in the feed.
    old = _upload(admin, old_glibc_debian(tmp_path, "old"), "old-glibc")
    refused = _certify(admin, old)
    assert refused.status_code == 409
    message = refused.json()["message"]
    assert "vulnerabilities at or above high: DEBIAN-CVE-2023-4911 (high" in message
    run = _run(admin, old, "dmz")
    assert run.status_code == 403 and "has a high vulnerability" in run.json()["message"]

    # A private SSH key left in the image: never certified, never deployed.
    keyed = _upload(admin, keyed_debian(tmp_path, "keyed"), "keyed")
    refused = _certify(admin, keyed)
    assert "carries credentials" in refused.json()["message"]
    assert "/root/.ssh/id_ed25519" in refused.json()["message"]
    run = _run(admin, keyed, "dmz")
    assert run.status_code == 403 and "carries credentials" in run.json()["message"]
