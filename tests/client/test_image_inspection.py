"""The SDK's inspections: what a script sees of an image's contents and vulnerabilities."""

from __future__ import annotations

from pathlib import Path

from gridvm.client import Client
from gridvm.schemas.inspection import Severity
from tests.guest_disks import debian_root, dpkg_entry, ext4_disk


def test_inspection_and_vulnerabilities(scanned_gv: Client, tmp_path: Path) -> None:
    root = debian_root(tmp_path, "d", [dpkg_entry("libssl3", "3.0.11-1~deb12u1", source="openssl")])
    scanned_gv.images.upload(ext4_disk(tmp_path, "d", root), name="d")
    found = scanned_gv.inspections.get("d")
    assert found.state == "ok" and found.os_id == "debian"
    assert [(p.name, p.source) for p in found.packages] == [("libssl3", "openssl")]
    scan = scanned_gv.inspections.vulnerabilities("d")
    assert [(v.id, v.fixed, v.severity) for v in scan.vulns] == [
        ("DSA-5532-1", "3.0.11-1~deb12u2", Severity.unknown)
    ]
    assert scanned_gv.inspections.vulnerabilities("d", min_severity="low").vulns == []
    assert scanned_gv.inspections.refresh("d").state == "ok"
