"""What reading an image without booting it found, and its vulnerability scan."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum

from gridvm.schemas.base import Wire


class Severity(StrEnum):
    """Vulnerability severity, in increasing order (``unknown`` is the lowest)."""

    unknown = "unknown"
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"


SEVERITY_ORDER: tuple[Severity, ...] = tuple(Severity)


def severity_rank(severity: Severity | str) -> int:
    """0 for unknown ... 4 for critical; for sorting and ``--min-severity``."""
    return SEVERITY_ORDER.index(Severity(severity))


def worst_severity(severities: Iterable[Severity | str]) -> Severity | None:
    """The highest of ``severities``; None when there are none."""
    ranked = [Severity(s) for s in severities]
    return max(ranked, key=severity_rank) if ranked else None


class InspectionState(StrEnum):
    ok = "ok"
    unreadable = "unreadable"


class PackageOut(Wire):
    name: str
    version: str
    arch: str
    source: str
    source_version: str
    kind: str  # "deb" or "rpm"


class FindingOut(Wire):
    kind: str
    path: str
    detail: str


class VulnOut(Wire):
    id: str
    package: str
    source: str
    installed: str
    fixed: str | None
    severity: Severity
    summary: str
    aliases: list[str] = []


class InspectionOut(Wire):
    image_id: str
    image: str
    state: InspectionState
    error: str | None
    os_id: str | None
    os_version: str | None
    os_name: str | None
    package_count: int
    packages: list[PackageOut]
    findings: list[FindingOut]
    inspected_at: datetime
    # None until the image has been scanned against a vulnerability feed.
    vulns: list[VulnOut] | None
    vuln_feed: str | None
    scanned_at: datetime | None
    worst_severity: Severity | None


class VulnerabilitiesOut(Wire):
    image_id: str
    image: str
    scanned: bool
    vuln_feed: str | None
    scanned_at: datetime | None
    worst_severity: Severity | None
    vulns: list[VulnOut]
