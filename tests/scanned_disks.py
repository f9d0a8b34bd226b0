"""Debian 12 disks whose upload-time inspection and scan give a known result.

Uploaded to a server started with ``vuln_feed=str(OSV_FEED)`` (the project's OSV subset),
each disk below is really read (qemu-storage-daemon + debugfs) and scanned, so the image's
inspection holds what the tests need. With the feed's records:

- DEBIAN-CVE-2023-4911 (glibc < 2.36-9+deb12u3) carries a CVSS vector: severity ``high``,
  the site's default block severity;
- DSA-5514-1 (glibc), DSA-5532-1 (openssl) and DSA-5587-1 (curl) carry no severity:
  ``unknown``, below any block severity.

A disk with no file system (``tests.api.helpers.make_qcow2``) is the unreadable case.
"""

from __future__ import annotations

from pathlib import Path

from tests.guest_disks import debian_root, dpkg_entry, ext4_disk, ssh_key, stage

OSV_FEED = Path(__file__).parent / "data" / "osv" / "debian-bookworm-subset.json"

# The one vulnerability of the feed at the default block severity (high), and one below it.
BLOCKING_VULN = "DEBIAN-CVE-2023-4911"
BELOW_BLOCK_VULN = "DSA-5532-1"

CLEAN_PACKAGES = [dpkg_entry("bash", "5.2.15-2+b2", source="bash (5.2.15-2)")]


def clean_debian(tmp: Path, name: str) -> Path:
    """Read, scanned, no credentials and no vulnerability."""
    return ext4_disk(tmp, name, debian_root(tmp, name, CLEAN_PACKAGES))


def keyed_debian(tmp: Path, name: str) -> Path:
    """Clean packages, but root's unprotected SSH private key at /root/.ssh/id_ed25519."""
    root = debian_root(tmp, name, CLEAN_PACKAGES)
    stage(root, {"/root/.ssh/id_ed25519": ssh_key(tmp / f"{name}-key")})
    return ext4_disk(tmp, name, root)


def old_glibc_debian(tmp: Path, name: str) -> Path:
    """glibc 2.36-9+deb12u2 (libc6 and libc-bin): BLOCKING_VULN (high) in each package,
    and DSA-5514-1 (unknown)."""
    packages = [
        dpkg_entry("libc-bin", "2.36-9+deb12u2", source="glibc"),
        dpkg_entry("libc6", "2.36-9+deb12u2", source="glibc"),
    ]
    return ext4_disk(tmp, name, debian_root(tmp, name, packages))


def old_openssl_debian(tmp: Path, name: str) -> Path:
    """openssl 3.0.11-1~deb12u1 (libssl3): BELOW_BLOCK_VULN only, severity unknown."""
    packages = [dpkg_entry("libssl3", "3.0.11-1~deb12u1", source="openssl"), *CLEAN_PACKAGES]
    return ext4_disk(tmp, name, debian_root(tmp, name, packages))
