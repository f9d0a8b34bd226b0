"""Certifications of images by security officers (and by construction or image lists)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from gridvm.schemas.base import Wire


class CertifyRequest(Wire):
    reason: str = Field(min_length=1, max_length=2000)
    # None: the site's default length of a certification.
    expires_at: datetime | None = None


class RevokeRequest(Wire):
    reason: str = Field(min_length=1, max_length=2000)


class CertificationOut(Wire):
    id: str
    image: str
    image_name: str
    # "officer", "construction" or "imagelist"
    source: str
    certified_by: str
    reason: str
    certified_at: datetime
    expires_at: datetime | None
    revoked_by: str | None = None
    revoked_at: datetime | None = None
    revoke_reason: str | None = None
    # "valid", "expired" or "revoked", as of the answer.
    state: str
