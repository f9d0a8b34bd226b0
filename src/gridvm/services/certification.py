"""Certification of images by security officers: certify, revoke, history.

An officer (or admin) certifies an image for a while, with a reason; the image's
class becomes ``certified`` until the certification expires or is revoked. Only
an image whose inspection read it ("ok"), found no credentials and no
vulnerability at or above the site's block severity may be certified.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from gridvm.common.config import ImagePolicySettings
from gridvm.common.errors import Conflict, InvalidInput
from gridvm.common.names import new_id
from gridvm.schemas.certification import CertificationOut
from gridvm.schemas.images import TrustClass
from gridvm.services.certification_state import cert_state, is_valid
from gridvm.services.images import find_image
from gridvm.services.principal import Principal
from gridvm.services.zone_policy import at_or_above, severity_rank
from gridvm.store.db import Database
from gridvm.store.models import Image, ImageCertification, ImageInspection, utcnow

log = logging.getLogger(__name__)


def certification_out(cert: ImageCertification, image: Image, now: datetime) -> CertificationOut:
    return CertificationOut(
        id=cert.id,
        image=image.id,
        image_name=image.name,
        source=cert.source,
        certified_by=cert.certified_by,
        reason=cert.reason,
        certified_at=cert.certified_at,
        expires_at=cert.expires_at,
        revoked_by=cert.revoked_by,
        revoked_at=cert.revoked_at,
        revoke_reason=cert.revoke_reason,
        state=cert_state(cert, now).value,
    )


def credential_findings(inspection: ImageInspection | None) -> tuple[str, ...]:
    """The credential findings of an inspection, as "kind at path"."""
    if inspection is None:
        return ()
    return tuple(
        f"{f.get('kind', 'credential')} at {f.get('path', '?')}" for f in inspection.findings or []
    )


def blocking_vulns(inspection: ImageInspection | None, block: str) -> list[str]:
    """The vulnerabilities at or above ``block``, worst first, as "ID (severity, package)"."""
    if inspection is None:
        return []
    found = [v for v in inspection.vulns or [] if at_or_above(v.get("severity"), block)]
    found.sort(key=lambda v: -severity_rank(v.get("severity")))
    return [f"{v.get('id')} ({v.get('severity')}, {v.get('package')})" for v in found]


def refusals(inspection: ImageInspection | None, block: str) -> list[str]:
    """Why an image with this inspection may not be certified (empty: it may)."""
    if inspection is None:
        return ["it has not been inspected"]
    if inspection.state != "ok":
        return [f"its inspection could not read it ({inspection.error or 'unreadable'})"]
    out = []
    if inspection.vulns is None:
        out.append("its packages have not been scanned for vulnerabilities yet")
    creds = credential_findings(inspection)
    if creds:
        out.append(f"it carries credentials: {', '.join(creds)}")
    vulns = blocking_vulns(inspection, block)
    if vulns:
        shown = ", ".join(vulns[:5]) + (f" and {len(vulns) - 5} more" if len(vulns) > 5 else "")
        out.append(f"it has vulnerabilities at or above {block}: {shown}")
    elif at_or_above(inspection.worst_severity, block):
        out.append(f"its worst vulnerability is {inspection.worst_severity}")
    return out


class CertificationService:
    def __init__(self, db: Database, settings: ImagePolicySettings) -> None:
        self.db = db
        self.settings = settings

    def _expiry(self, expires_at: datetime | None, now: datetime) -> datetime:
        longest = timedelta(days=self.settings.max_certification_days)
        if expires_at is None:
            return now + min(timedelta(days=self.settings.default_certification_days), longest)
        if expires_at.tzinfo is None:
            raise InvalidInput(
                "the expiry needs a time zone", hint="give e.g. 2027-01-31 or 2027-01-31T12:00Z"
            )
        if expires_at <= now:
            raise InvalidInput(
                f"the expiry {expires_at:%Y-%m-%d %H:%M} is in the past",
                hint="give a date to come, or a duration such as 90d",
            )
        if expires_at - now > longest + timedelta(minutes=5):
            raise InvalidInput(
                f"a certification may last at most {self.settings.max_certification_days} days",
                hint=f"give an expiry within {self.settings.max_certification_days}d",
            )
        return expires_at

    def certify(
        self, who: Principal, ref: str, reason: str, expires_at: datetime | None
    ) -> CertificationOut:
        who.require_officer()
        if not reason.strip():
            raise InvalidInput("give the reason for the certification", hint="--reason TEXT")
        now = utcnow()
        expiry = self._expiry(expires_at, now)
        with self.db.session() as s:
            image = find_image(s, who, ref)
            if image.trust == TrustClass.site:
                raise Conflict(
                    f"image {image.name!r} is a site template: it is trusted without a"
                    " certification"
                )
            reasons = refusals(s.get(ImageInspection, image.id), self.settings.block_severity)
            if reasons:
                raise Conflict(
                    f"image {image.name!r} cannot be certified: {'; '.join(reasons)}",
                    hint="see its inspection with: gridvm image show " + image.id,
                )
            cert = ImageCertification(
                id=new_id("crt"),
                image_id=image.id,
                source="officer",
                certified_by=who.name,
                reason=reason.strip(),
                certified_at=now,
                expires_at=expiry,
            )
            s.add(cert)
            image.trust = TrustClass.certified.value
            s.flush()
            log.info("image %s certified by %s until %s", image.id, who.name, expiry)
            return certification_out(cert, image, now)

    def revoke(self, who: Principal, ref: str, reason: str) -> list[CertificationOut]:
        who.require_officer()
        if not reason.strip():
            raise InvalidInput("give the reason for the revocation", hint="--reason TEXT")
        now = utcnow()
        with self.db.session() as s:
            image = find_image(s, who, ref)
            revoked = revoke_valid(s, image, who.name, reason.strip(), now)
            if not revoked:
                raise Conflict(
                    f"image {image.name!r} has no valid certification to revoke",
                    hint="see its history with: gridvm image certifications " + image.id,
                )
            log.info("image %s: certification revoked by %s", image.id, who.name)
            return [certification_out(c, image, now) for c in revoked]

    def history(self, who: Principal, ref: str) -> list[CertificationOut]:
        now = utcnow()
        with self.db.session() as s:
            image = find_image(s, who, ref)
            return [certification_out(c, image, now) for c in image.certifications]


def revoke_valid(
    s: Session,
    image: Image,
    by: str,
    reason: str,
    now: datetime,
    subscription_id: str | None = None,
) -> list[ImageCertification]:
    """Revoke the image's valid certifications (only those of ``subscription_id`` if given);
    the image falls back to the ``user`` class when none is left."""
    revoked = []
    for cert in s.query(ImageCertification).filter_by(image_id=image.id).all():
        if not is_valid(cert, now):
            continue
        if subscription_id is not None and cert.subscription_id != subscription_id:
            continue
        cert.revoked_by, cert.revoked_at, cert.revoke_reason = by, now, reason
        revoked.append(cert)
    s.flush()
    sync_trust(s, image, now)
    return revoked


def sync_trust(s: Session, image: Image, now: datetime) -> None:
    """Keep ``Image.trust`` in step with the image's certifications (site stays site)."""
    s.expire(image, ["certifications"])
    if image.trust == TrustClass.site:
        return
    valid = any(is_valid(c, now) for c in image.certifications)
    image.trust = (TrustClass.certified if valid else TrustClass.user).value
