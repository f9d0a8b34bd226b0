"""The SDK's inspections: what a script sees of an image's contents and vulnerabilities."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from gridvm.client import Client
from gridvm.schemas.inspection import Severity
from tests.guest_disks import debian_root, dpkg_entry, ext4_disk
from tests.servers import RunningServer, run_server

FEED = Path(__file__).parents[1] / "data" / "osv" / "debian-bookworm-subset.json"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    feed = tmp_path / "feed.json"
    shutil.copyfile(FEED, feed)
    with run_server(tmp_path / "server", vuln_feed=str(feed)) as running:
        yield running


def test_inspection_and_vulnerabilities(gv: Client, tmp_path: Path) -> None:
    root = debian_root(tmp_path, "d", [dpkg_entry("libssl3", "3.0.11-1~deb12u1", source="openssl")])
    gv.images.upload(ext4_disk(tmp_path, "d", root), name="d")
    found = gv.inspections.get("d")
    assert found.state == "ok" and found.os_id == "debian"
    assert [(p.name, p.source) for p in found.packages] == [("libssl3", "openssl")]
    scan = gv.inspections.vulnerabilities("d")
    assert [(v.id, v.fixed, v.severity) for v in scan.vulns] == [
        ("DSA-5532-1", "3.0.11-1~deb12u2", Severity.unknown)
    ]
    assert gv.inspections.vulnerabilities("d", min_severity="low").vulns == []
    assert gv.inspections.refresh("d").state == "ok"
