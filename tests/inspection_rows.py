"""Stand-in inspection results for tests, written straight into the database.

Upload-time inspection (the image-inspection branch) is not on main yet: until it is,
tests that need an image's inspection result record one here. Once inspection lands,
tests that use ``record_inspection`` for real images should upload images that carry
the findings (credentials, vulnerable packages) instead.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gridvm.store.models import ImageCertification, ImageInspection
from tests.servers import RunningServer


def record_inspection(
    server: RunningServer,
    image_id: str,
    *,
    state: str = "ok",
    findings: list[dict[str, str]] | None = None,
    vulns: list[dict[str, Any]] | None = None,
    scanned: bool = True,
    worst_severity: str | None = None,
    error: str | None = None,
) -> None:
    """Record (or replace) the inspection result of ``image_id`` (by default: read, no
    findings, scanned with no vulnerability)."""
    with server.services.db.session() as s:
        row = s.get(ImageInspection, image_id)
        if row is None:
            row = ImageInspection(image_id=image_id)
            s.add(row)
        row.state = state
        row.error = error
        row.findings = findings or []
        row.packages = []
        # Scanned (a list, maybe empty) or not yet (None).
        row.vulns = (vulns or []) if scanned else None
        row.worst_severity = worst_severity


def vuln(vuln_id: str, severity: str, package: str = "openssl") -> dict[str, Any]:
    return {
        "id": vuln_id,
        "package": package,
        "source": package,
        "installed": "1.0",
        "fixed": "1.1",
        "severity": severity,
        "summary": "a test vulnerability",
        "aliases": [],
    }


def set_certification_expiry(server: RunningServer, image_id: str, expires_at: datetime) -> None:
    """Move the expiry of the image's certifications (time passing, for expiry tests)."""
    with server.services.db.session() as s:
        for cert in s.query(ImageCertification).filter_by(image_id=image_id):
            cert.expires_at = expires_at
