"""Fair share, quotas and advance reservations."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from gridvm.api.deps import Caller, Services
from gridvm.schemas.scheduling import (
    QuotaOut,
    QuotaSet,
    QuotaSubject,
    ReservationCreate,
    ReservationOut,
    ShareTree,
)

router = APIRouter(tags=["scheduling"])


@router.get("/share")
def share(svc: Services, who: Caller) -> ShareTree:
    """The fair-share tree: shares, decayed usage, factor, running and pending per group."""
    return svc.fairshare.tree()


@router.get("/quotas")
def quotas(svc: Services, who: Caller) -> list[QuotaOut]:
    """All quotas (admins), or the caller's and their groups', with what is in use."""
    return svc.quotas.show(who)


@router.put("/quotas/{kind}/{name}")
def set_quota(
    kind: QuotaSubject, name: str, body: QuotaSet, svc: Services, who: Caller
) -> QuotaOut:
    return svc.quotas.set(who, kind, name, body)


@router.delete("/quotas/{kind}/{name}", status_code=status.HTTP_204_NO_CONTENT)
def remove_quota(kind: QuotaSubject, name: str, svc: Services, who: Caller) -> Response:
    svc.quotas.remove(who, kind, name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/reservations", status_code=status.HTTP_201_CREATED)
def create_reservation(body: ReservationCreate, svc: Services, who: Caller) -> ReservationOut:
    return svc.reservations.create(who, body)


@router.get("/reservations")
def reservations(svc: Services, who: Caller) -> list[ReservationOut]:
    return svc.reservations.list(who)


@router.delete("/reservations/{reservation_id}", status_code=status.HTTP_204_NO_CONTENT)
def remove_reservation(reservation_id: str, svc: Services, who: Caller) -> Response:
    svc.reservations.remove(who, reservation_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
