"""The OSV matcher: Debian version order, ranges, binary -> source mapping, ecosystems."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from gridvm.images.inspection.packages import dpkg_packages
from gridvm.images.osv import (
    FeedError,
    affected_by_range,
    cvss3_base_score,
    debian_release,
    match,
    parse_feed,
    severity_of,
)
from gridvm.schemas.inspection import Severity, severity_rank, worst_severity
from tests.guest_disks import dpkg_entry

FEED = Path(__file__).parent.parent / "data" / "osv" / "debian-bookworm-subset.json"


def events(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{kind: value} for kind, value in pairs]


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("2.36-9+deb12u1", True),
        ("2.36-9+deb12u3", False),  # the fixed version itself
        ("2.36-9+deb12u10", False),  # u10 > u3 in Debian order, not in string order
        ("2.36-9", True),
        ("2.36-9~bpo1", True),  # a tilde sorts before anything
        ("1:2.0-1", False),  # an epoch beats any upstream version
    ],
)
def test_range_with_fixed_event(version: str, expected: bool) -> None:
    affected, _fixed = affected_by_range(
        version, events(("introduced", "0"), ("fixed", "2.36-9+deb12u3"))
    )
    assert affected is expected


def test_tilde_and_epoch_order() -> None:
    rng = events(("introduced", "0"), ("fixed", "3.0.11-1~deb12u2"))
    assert affected_by_range("3.0.11-1~deb12u1", rng) == (True, "3.0.11-1~deb12u2")
    assert affected_by_range("3.0.11-1", rng)[0] is False  # 1~deb12u2 < 1
    epoch = events(("introduced", "1:1.0-1"), ("fixed", "1:1.2-1"))
    assert affected_by_range("9.9-1", epoch)[0] is False  # no epoch: before the introduction
    assert affected_by_range("1:1.1-1", epoch)[0] is True


def test_last_affected_and_reintroduced() -> None:
    rng = events(("introduced", "1.0-1"), ("last_affected", "1.5-1"))
    assert affected_by_range("1.5-1", rng)[0] is True
    assert affected_by_range("1.6-1", rng)[0] is False
    assert affected_by_range("0.9-1", rng)[0] is False
    two = events(
        ("introduced", "0"), ("fixed", "1.0-1"), ("introduced", "2.0-1"), ("fixed", "2.1-1")
    )
    assert [affected_by_range(v, two)[0] for v in ("0.5", "1.5", "2.0-5", "3")] == [
        True,
        False,
        True,
        False,
    ]


def packages() -> list[dict[str, Any]]:
    status = (
        dpkg_entry("libc6", "2.36-9+deb12u1", source="glibc")
        + dpkg_entry("libc-bin", "2.36-9+deb12u1", source="glibc")
        + dpkg_entry("libssl3", "3.0.11-1~deb12u1", source="openssl")
        + dpkg_entry("curl", "7.88.1-10+deb12u5")
        + dpkg_entry("zlib1g", "1:1.2.13.dfsg-1+b1", source="zlib (1:1.2.13.dfsg-1)")
        + dpkg_entry("oldpkg", "1.0-1", status="deinstall ok config-files")
    )
    return dpkg_packages(status)


def test_dpkg_status_maps_binaries_to_sources() -> None:
    found = {p["name"]: p for p in packages()}
    assert "oldpkg" not in found  # removed, only its configuration files remain
    assert found["libc6"]["source"] == "glibc"
    assert found["curl"]["source"] == "curl"
    assert found["curl"]["source_version"] == "7.88.1-10+deb12u5"
    # A binNMU: the binary's version differs from its source's.
    assert (found["zlib1g"]["source"], found["zlib1g"]["source_version"]) == (
        "zlib",
        "1:1.2.13.dfsg-1",
    )


def test_match_real_records_on_bookworm() -> None:
    records = parse_feed(FEED.read_bytes())
    vulns = match(packages(), records, "12")
    hits = {(v["id"], v["package"]) for v in vulns}
    assert hits == {
        ("DSA-5514-1", "libc6"),
        ("DSA-5514-1", "libc-bin"),
        ("DEBIAN-CVE-2023-4911", "libc6"),
        ("DEBIAN-CVE-2023-4911", "libc-bin"),
        ("DSA-5532-1", "libssl3"),
    }  # curl is at its fixed version
    dsa = next(v for v in vulns if v["id"] == "DSA-5514-1")
    assert dsa["fixed"] == "2.36-9+deb12u3"
    assert dsa["source"] == "glibc"
    assert dsa["installed"] == "2.36-9+deb12u1"
    assert dsa["severity"] == "unknown"  # Debian's advisory carries none
    assert "CVE-2023-4911" in dsa["aliases"]
    cve = next(v for v in vulns if v["id"] == "DEBIAN-CVE-2023-4911")
    assert cve["severity"] == "high"  # CVSS 3.1 base score 7.8
    assert vulns[0]["severity"] == "high"  # worst first


def test_ecosystem_filtering() -> None:
    records = parse_feed(FEED.read_bytes())
    # The same packages on Debian 11: only Debian:11 ranges count (2.36 > bullseye's fix).
    assert match(packages(), records, "11") == []
    # An unknown release: release-specific records do not apply.
    assert match(packages(), records, None) == []
    unversioned = [
        {
            "id": "DSA-X",
            "affected": [
                {
                    "package": {"ecosystem": "Debian", "name": "glibc"},
                    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}],
                }
            ],
        },
        {
            "id": "UBUNTU-X",
            "affected": [
                {
                    "package": {"ecosystem": "Ubuntu:22.04", "name": "glibc"},
                    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}],
                }
            ],
        },
    ]
    assert {v["id"] for v in match(packages(), unversioned, None)} == {"DSA-X"}
    assert debian_release("debian", "12") == "12"
    assert debian_release("ubuntu", "22.04") is None


def test_binary_name_is_not_matched_as_source() -> None:
    record = {
        "id": "DSA-Y",
        "affected": [
            {
                "package": {"ecosystem": "Debian:12", "name": "libc6"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}],
            }
        ],
    }
    assert match(packages(), [record], "12") == []


def test_explicit_versions_and_withdrawn() -> None:
    listed = {
        "id": "DEBIAN-CVE-Z",
        "affected": [
            {
                "package": {"ecosystem": "Debian:12", "name": "curl"},
                "versions": ["7.88.1-10+deb12u5"],
            }
        ],
    }
    assert [v["fixed"] for v in match(packages(), [listed], "12")] == [None]
    assert match(packages(), [{**listed, "withdrawn": "2024-01-01T00:00:00Z"}], "12") == []


def test_severity_sources() -> None:
    assert cvss3_base_score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H") == 9.8
    assert cvss3_base_score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H") == 10.0
    assert cvss3_base_score("CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N") == 5.9
    assert cvss3_base_score("CVSS:4.0/AV:N") is None
    assert severity_of({}, {"ecosystem_specific": {"urgency": "unimportant"}}) == Severity.low
    assert severity_of({}, {"ecosystem_specific": {"urgency": "not yet assigned"}}) == (
        Severity.unknown
    )
    assert severity_of({"database_specific": {"severity": "MODERATE"}}, {}) == Severity.medium
    assert severity_rank("unknown") < severity_rank("low") < severity_rank("critical")
    assert worst_severity(["low", "critical", "unknown"]) == Severity.critical
    assert worst_severity([]) is None


def test_feed_formats(tmp_path: Path) -> None:
    record = json.loads(FEED.read_text())[0]
    assert [r["id"] for r in parse_feed(json.dumps(record).encode())] == ["DSA-5514-1"]
    assert len(parse_feed(json.dumps({"vulns": [record]}).encode())) == 1
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:  # osv.dev's all.zip: one record per file
        for r in json.loads(FEED.read_text()):
            archive.writestr(f"{r['id']}.json", json.dumps(r))
        archive.writestr("broken.json", "{not json")
    assert len(parse_feed(buffer.getvalue())) == 4
    with pytest.raises(FeedError):
        parse_feed(b"this is not a feed")
