"""Usage over time: core-hours per group per hour or day."""

from __future__ import annotations

from fastapi import APIRouter

from gridvm.api.deps import Caller, Services
from gridvm.schemas.usage import UsageHistory

router = APIRouter(tags=["scheduling"])


@router.get("/usage")
def usage(svc: Services, who: Caller, days: int = 7) -> UsageHistory:
    """Core-hours each group's VMs used per bucket over the last ``days`` days (hours up to
    2 days, days beyond): every group for admins, the caller's own groups otherwise."""
    return svc.usage.history(who, days)
