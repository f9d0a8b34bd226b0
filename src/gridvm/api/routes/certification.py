"""Certification of images: certify, revoke, history (officers and admins change it)."""

from __future__ import annotations

from fastapi import APIRouter, status

from gridvm.api.deps import Caller, Services
from gridvm.schemas.certification import CertificationOut, CertifyRequest, RevokeRequest

router = APIRouter(tags=["certification"])


@router.post("/images/{ref}/certifications", status_code=status.HTTP_201_CREATED)
def certify_image(ref: str, body: CertifyRequest, svc: Services, who: Caller) -> CertificationOut:
    """Certify an image (security officers and admins): it may then run in the trusted zone."""
    return svc.certification.certify(who, ref, body.reason, body.expires_at)


@router.post("/images/{ref}/certifications/revoke")
def revoke_image(
    ref: str, body: RevokeRequest, svc: Services, who: Caller
) -> list[CertificationOut]:
    """Revoke the image's valid certifications (security officers and admins)."""
    return svc.certification.revoke(who, ref, body.reason)


@router.get("/images/{ref}/certifications")
def image_certifications(ref: str, svc: Services, who: Caller) -> list[CertificationOut]:
    """Every certification of the image, oldest first, with revocations."""
    return svc.certification.history(who, ref)
