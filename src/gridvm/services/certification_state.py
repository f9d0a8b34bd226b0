"""An image's class from its certifications, at a given time.

``site`` images are templates; ``certified`` ones have a certification that is
neither revoked nor past its expiry; everything else is ``user``. Expiry is
judged when asked, so a certification simply stops counting once it lapses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gridvm.schemas.images import TrustClass
from gridvm.services.zone_policy import CertState
from gridvm.store.models import Image, ImageCertification


def is_valid(cert: ImageCertification, now: datetime) -> bool:
    return cert.revoked_at is None and (cert.expires_at is None or cert.expires_at > now)


def cert_state(cert: ImageCertification, now: datetime) -> CertState:
    if cert.revoked_at is not None:
        return CertState.revoked
    if cert.expires_at is not None and cert.expires_at <= now:
        return CertState.expired
    return CertState.valid


@dataclass(frozen=True)
class Standing:
    image_class: TrustClass
    state: CertState
    # A valid certification: until when; a lapsed one: when it lapsed.
    until: datetime | None = None
    current: ImageCertification | None = None


def certification_standing(image: Image, now: datetime) -> Standing:
    """The image's class and the state of the certification it stands on."""
    certs = list(image.certifications)
    valid = [c for c in certs if is_valid(c, now)]
    if valid:
        # The one lasting longest (None: no expiry) is the one that counts.
        best = max(valid, key=lambda c: (c.expires_at is None, c.expires_at or now))
        cls = TrustClass.site if image.trust == TrustClass.site else TrustClass.certified
        return Standing(cls, CertState.valid, best.expires_at, best)
    if image.trust == TrustClass.site:
        return Standing(TrustClass.site, CertState.none)
    if not certs:
        return Standing(TrustClass.user, CertState.none)
    latest = certs[-1]
    state = cert_state(latest, now)
    lapsed = latest.revoked_at if state == CertState.revoked else latest.expires_at
    return Standing(TrustClass.user, state, lapsed, None)
