"""The zone policy applied to a request: gathers the image's facts and asks zone_policy."""

from __future__ import annotations

from sqlalchemy.orm import Session

from gridvm.common.errors import Forbidden
from gridvm.schemas.hosts import Zone
from gridvm.services.certification import credential_findings
from gridvm.services.certification_state import certification_standing
from gridvm.services.zone_policy import ZoneDecision, ZoneInputs, decide_zone
from gridvm.store.models import Image, ImageInspection, utcnow


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
