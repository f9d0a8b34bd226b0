"""``gridvm image inspect`` and ``gridvm image vulns`` against a real server and real disks."""

from __future__ import annotations

from pathlib import Path

from tests.cli.conftest import Cli
from tests.guest_disks import (
    DEBIAN_12_OS_RELEASE,
    crypt_sha512,
    debian_root,
    dpkg_entry,
    ext4_disk,
    ssh_key,
    stage,
    vfat_disk,
)


def test_inspect_shows_os_packages_and_findings(scanned_cli: Cli, tmp_path: Path) -> None:
    root = stage(
        tmp_path / "root",
        {
            "/etc/os-release": DEBIAN_12_OS_RELEASE,
            "/var/lib/dpkg/status": dpkg_entry("libc6", "2.36-9+deb12u1", source="glibc")
            + dpkg_entry("bash", "5.2.15-2+b2", source="bash (5.2.15-2)"),
            "/home/alice/.ssh/id_ed25519": ssh_key(tmp_path / "key"),
            "/etc/shadow": f"root:{crypt_sha512('pw')}:19000:0:99999:7:::\n",
        },
    )
    scanned_cli.ok("image", "upload", str(ext4_disk(tmp_path, "guest", root)), "--name", "guest")

    shown = scanned_cli.ok("image", "inspect", "guest").stdout
    assert "Debian GNU/Linux 12 (bookworm)" in shown
    fields = {
        line.split(None, 1)[0]: line.split(None, 1)[1].strip() for line in shown.splitlines()[:8]
    }
    assert fields["packages"] == "2"
    assert fields["state"] == "ok"
    assert fields["vulnerabilities"].startswith("2 known vulnerabilities, worst high")
    assert "2 findings" in shown
    assert "/home/alice/.ssh/id_ed25519" in shown and "ssh_private_key" in shown
    assert "password_hash" in shown and "user 'root': SHA-512 crypt hash" in shown
    assert "libc6" not in shown  # packages only with --packages

    listed = scanned_cli.ok("image", "inspect", "guest", "--packages").stdout
    assert "libc6" in listed and "glibc" in listed and "5.2.15-2" in listed

    data = scanned_cli.json("image", "inspect", "guest")
    assert data["state"] == "ok" and data["package_count"] == 2
    assert {f["kind"] for f in data["findings"]} == {"ssh_private_key", "password_hash"}
    assert data["worst_severity"] == "high"

    again = scanned_cli.json("image", "inspect", "guest", "--refresh")
    assert again["inspected_at"] >= data["inspected_at"]


def test_vulns_table_and_min_severity(scanned_cli: Cli, tmp_path: Path) -> None:
    root = debian_root(
        tmp_path,
        "old",
        [
            dpkg_entry("libc6", "2.36-9+deb12u1", source="glibc"),
            dpkg_entry("libssl3", "3.0.11-1~deb12u1", source="openssl"),
        ],
    )
    scanned_cli.ok("image", "upload", str(ext4_disk(tmp_path, "old", root)), "--name", "old")
    table = scanned_cli.ok("image", "vulns", "old").stdout
    for text in ("DSA-5514-1", "DEBIAN-CVE-2023-4911", "DSA-5532-1", "2.36-9+deb12u3", "libssl3"):
        assert text in table
    assert "high" in table and "unknown" in table
    high = scanned_cli.ok("image", "vulns", "old", "--min-severity", "high").stdout
    assert "DEBIAN-CVE-2023-4911" in high and "DSA-5532-1" not in high
    data = scanned_cli.json("image", "vulns", "old", "--min-severity", "critical")
    assert data["vulns"] == [] and data["worst_severity"] == "high"
    assert (
        "no known vulnerabilities"
        in scanned_cli.ok("image", "vulns", "old", "--min-severity", "critical").stdout
    )
    assert (
        "invalid value"
        in scanned_cli("image", "vulns", "old", "--min-severity", "severe").output.lower()
    )


def test_unreadable_image(scanned_cli: Cli, tmp_path: Path) -> None:
    scanned_cli.ok("image", "upload", str(vfat_disk(tmp_path, "fat")), "--name", "fat")
    shown = scanned_cli.ok("image", "inspect", "fat").stdout
    assert "unreadable" in shown and "vfat" in shown
    assert "has not been scanned" in scanned_cli.ok("image", "vulns", "fat").stdout
    assert scanned_cli.fails("image", "inspect", "missing") == (
        "error: no image 'missing' (see the images you can use with: gridvm image list)"
    )
