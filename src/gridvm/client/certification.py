"""Certification of images: certify, revoke, history."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote

from pydantic import TypeAdapter

from gridvm.client.transport import Transport
from gridvm.schemas.certification import CertificationOut, CertifyRequest, RevokeRequest

_CERT = TypeAdapter(CertificationOut)
_CERTS = TypeAdapter(list[CertificationOut])


def _path(ref: str) -> str:
    return f"/images/{quote(ref, safe='')}/certifications"


class Certifications:
    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def certify(
        self, image: str, reason: str, expires_at: datetime | None = None
    ) -> CertificationOut:
        """Certify an image until ``expires_at`` (default: the site's length); officers only."""
        body = CertifyRequest(reason=reason, expires_at=expires_at).model_dump(mode="json")
        return self._t.send("POST", _path(image), _CERT, json=body)

    def revoke(self, image: str, reason: str) -> list[CertificationOut]:
        """Revoke the image's valid certifications; officers only."""
        body = RevokeRequest(reason=reason).model_dump(mode="json")
        return self._t.send("POST", _path(image) + "/revoke", _CERTS, json=body)

    def list(self, image: str) -> list[CertificationOut]:
        """Every certification of the image, oldest first."""
        return self._t.get(_path(image), _CERTS)
