"""Fair share, quotas and advance reservations."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote

from pydantic import TypeAdapter

from gridvm.client.transport import Transport
from gridvm.schemas.scheduling import (
    QuotaOut,
    QuotaSet,
    QuotaSubject,
    ReservationCreate,
    ReservationOut,
    ShareTree,
)

_SHARE = TypeAdapter(ShareTree)
_QUOTA = TypeAdapter(QuotaOut)
_QUOTAS = TypeAdapter(list[QuotaOut])
_RESERVATION = TypeAdapter(ReservationOut)
_RESERVATIONS = TypeAdapter(list[ReservationOut])


class Share:
    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def tree(self) -> ShareTree:
        """Every group: shares, decayed usage, fair-share factor, running and pending."""
        return self._t.get("/share", _SHARE)


class Quotas:
    def __init__(self, transport: Transport) -> None:
        self._t = transport

    @staticmethod
    def _path(kind: QuotaSubject | str, name: str) -> str:
        return f"/quotas/{QuotaSubject(kind).value}/{quote(name, safe='')}"

    def set(
        self,
        kind: QuotaSubject | str,
        name: str,
        *,
        cores: int | None = None,
        memory_mb: int | None = None,
        vms: int | None = None,
        image_bytes: int | None = None,
        images: int | None = None,
    ) -> QuotaOut:
        """Set what a user or group may run at once and keep in images (admins); None
        leaves a field unlimited."""
        body = QuotaSet(
            cores=cores, memory_mb=memory_mb, vms=vms, image_bytes=image_bytes, images=images
        ).model_dump(mode="json")
        return self._t.send("PUT", self._path(kind, name), _QUOTA, json=body)

    def remove(self, kind: QuotaSubject | str, name: str) -> None:
        self._t.request("DELETE", self._path(kind, name))

    def list(self) -> list[QuotaOut]:
        """All quotas (admins), or yours and your groups', with what is in use."""
        return self._t.get("/quotas", _QUOTAS)


class Reservations:
    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def create(
        self,
        group: str,
        cores: int,
        starts_at: datetime,
        ends_at: datetime,
        hosts: list[str] | None = None,
    ) -> ReservationOut:
        body = ReservationCreate(
            group=group, cores=cores, starts_at=starts_at, ends_at=ends_at, hosts=hosts or []
        ).model_dump(mode="json")
        return self._t.send("POST", "/reservations", _RESERVATION, json=body)

    def list(self) -> list[ReservationOut]:
        return self._t.get("/reservations", _RESERVATIONS)

    def remove(self, reservation_id: str) -> None:
        self._t.request("DELETE", f"/reservations/{quote(reservation_id, safe='')}")
