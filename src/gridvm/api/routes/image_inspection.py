"""What inspecting an image found (OS, packages, credentials) and its known vulnerabilities."""

from __future__ import annotations

import anyio.to_thread
from fastapi import APIRouter

from gridvm.api.deps import Caller, Services
from gridvm.schemas.inspection import InspectionOut, Severity, VulnerabilitiesOut

router = APIRouter(tags=["images"])


@router.get("/images/{ref}/inspection")
def show_inspection(ref: str, svc: Services, who: Caller) -> InspectionOut:
    """The image's inspection: OS, installed packages, credential findings, scan summary."""
    return svc.inspections.get(who, ref)


@router.post("/images/{ref}/inspection")
async def reinspect(ref: str, svc: Services, who: Caller) -> InspectionOut:
    """Read the image again (its owner, a security officer or an admin)."""
    return await anyio.to_thread.run_sync(lambda: svc.inspections.reinspect(who, ref))


@router.get("/images/{ref}/vulnerabilities")
def show_vulnerabilities(
    ref: str, svc: Services, who: Caller, min_severity: Severity = Severity.unknown
) -> VulnerabilitiesOut:
    """Known vulnerabilities of the image's packages in the site's feed, worst first."""
    return svc.inspections.vulnerabilities(who, ref, min_severity)
