"""The zone policy applied to a request: gathers the image's facts and asks zone_policy."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from gridvm.common.errors import Forbidden
from gridvm.schemas.hosts import Zone
from gridvm.schemas.images import TrustClass
from gridvm.services.certification import credential_findings
from gridvm.services.certification_state import certification_standing
from gridvm.services.zone_policy import CertState, ZoneDecision, ZoneInputs, decide_zone
from gridvm.store.models import Image, ImageInspection, Vm, utcnow


def zone_decision(s: Session, image: Image, requested: Zone | None, block: str) -> ZoneDecision:
    """Where a VM of ``image`` may run (or why not), as of now."""
    standing = certification_standing(image, utcnow())
    inspection = s.get(ImageInspection, image.id)
    return decide_zone(
        ZoneInputs(
            image_class=standing.image_class,
            certification=standing.state,
            credential_findings=credential_findings(inspection),
            worst_severity=inspection.worst_severity if inspection else None,
            requested=requested,
            block_severity=block,
            lapsed_at=standing.until if standing.state.value in ("expired", "revoked") else None,
        )
    )


def zone_for(s: Session, image: Image, requested: Zone | None, block: str) -> Zone:
    """The zone a VM of ``image`` runs in; refused (403, with the reason) if none."""
    decision = zone_decision(s, image, requested, block)
    if decision.zone is None:
        raise Forbidden(
            f"image {image.name!r} may not be deployed: {decision.refusal}", hint=decision.hint
        )
    return decision.zone


def trusted_run_lapsed(vm: Vm, now: datetime) -> str | None:
    """Why a VM waiting for the trusted zone may no longer run there (its image's
    certification was revoked or expired since the request), or None."""
    if vm.zone != Zone.trusted.value or vm.image is None:
        return None
    standing = certification_standing(vm.image, now)
    if standing.image_class != TrustClass.user:
        return None
    when = f" on {standing.until:%Y-%m-%d %H:%M} UTC" if standing.until else ""
    what = standing.state.value if standing.state != CertState.none else "withdrawn"
    return (
        f"the certification of image {vm.image.name!r} was {what}{when}: it may no longer run"
        " in the trusted zone"
    )
