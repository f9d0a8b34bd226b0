"""Time passing, for certification expiry tests.

A certification lasts days at least; rather than wait, a test moves its expiry into the past
in the database. Everything else the certification tests need (inspection results, scans)
comes from real disks uploaded through the API: see tests/scanned_disks.py.
"""

from __future__ import annotations

from datetime import datetime

from gridvm.store.models import ImageCertification
from tests.servers import RunningServer


def set_certification_expiry(server: RunningServer, image_id: str, expires_at: datetime) -> None:
    """Move the expiry of the image's certifications (time passing, for expiry tests)."""
    with server.services.db.session() as s:
        for cert in s.query(ImageCertification).filter_by(image_id=image_id):
            cert.expires_at = expires_at
