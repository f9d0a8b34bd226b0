"""Signed HEPiX image lists: this site's export, and other sites' lists it subscribes to."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from gridvm.schemas.base import Wire


class SubscriptionCreate(Wire):
    name: str
    url: str = Field(max_length=2000)
    # The endorser the list must be signed by (OpenSSL one-line form: /O=Site/CN=Name).
    endorser_dn: str = Field(min_length=3, max_length=512)
    # The CA certificate(s) (PEM) the endorser's certificate must chain to.
    ca_pem: str = Field(min_length=1, max_length=256 * 1024)


class SubscriptionOut(Wire):
    name: str
    url: str
    endorser_dn: str
    list_identifier: str | None
    list_expires_at: datetime | None
    last_checked_at: datetime | None
    # Why the last refresh took nothing (None: it succeeded).
    last_error: str | None
    created_by: str
    created_at: datetime
    # Images from this list, and how many of them are certified now.
    images: int = 0
    certified: int = 0
