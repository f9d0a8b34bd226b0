"""Advance reservations: an admin keeps N cores (on named hosts or any) for a group over
a time window; the scheduler lets only that group use them then, and keeps other VMs
whose walltime would reach into the window off them."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import func, select

from gridvm.common.errors import InvalidInput, NotFound
from gridvm.common.names import new_id
from gridvm.schemas.scheduling import ReservationCreate, ReservationOut
from gridvm.services.principal import Principal
from gridvm.store.db import Database
from gridvm.store.models import Group, Host, Reservation, utcnow


def reservation_out(r: Reservation) -> ReservationOut:
    now = utcnow()
    return ReservationOut(
        id=r.id,
        group=r.group.name,
        cores=r.cores,
        starts_at=r.starts_at,
        ends_at=r.ends_at,
        hosts=[str(h) for h in r.hosts or []],
        created_by=r.created_by,
        active=r.starts_at <= now < r.ends_at,
    )


class ReservationService:
    def __init__(self, db: Database, wake_scheduler: Callable[[], None] = lambda: None) -> None:
        self.db = db
        self.wake_scheduler = wake_scheduler

    def create(self, who: Principal, body: ReservationCreate) -> ReservationOut:
        who.require_admin()
        for when in (body.starts_at, body.ends_at):
            if when.tzinfo is None:
                raise InvalidInput(
                    "give reservation times with a time zone", hint="e.g. 2026-12-01T08:00:00Z"
                )
        if body.ends_at <= body.starts_at:
            raise InvalidInput("a reservation must end after it starts")
        if body.ends_at <= utcnow():
            raise InvalidInput("that window is over already", hint="give a window in the future")
        with self.db.session() as s:
            group = s.scalar(select(Group).where(Group.name == body.group))
            if group is None:
                raise NotFound(f"no group {body.group!r}")
            query = select(func.coalesce(func.sum(Host.cores), 0))
            if body.hosts:
                known = set(s.scalars(select(Host.name).where(Host.name.in_(body.hosts))))
                missing = sorted(set(body.hosts) - known)
                if missing:
                    raise NotFound(
                        f"no host {missing[0]!r}", hint="see the hosts: gridvm host list"
                    )
                query = query.where(Host.name.in_(body.hosts))
            capacity = int(s.scalar(query) or 0)
            if body.cores > capacity:
                where = "those hosts have" if body.hosts else "the site has"
                raise InvalidInput(
                    f"cannot reserve {body.cores} cores: {where} {capacity}",
                    hint=f"reserve at most {capacity} cores",
                )
            overlapping = s.scalars(
                select(Reservation).where(
                    Reservation.starts_at < body.ends_at, Reservation.ends_at > body.starts_at
                )
            ).all()
            named = set(body.hosts)
            booked = sum(
                r.cores
                for r in overlapping
                # On named hosts only reservations that may use them compete.
                if not named or not r.hosts or named & set(r.hosts)
            )
            if booked + body.cores > capacity:
                free = max(0, capacity - booked)
                raise InvalidInput(
                    f"cannot reserve {body.cores} cores: {booked} of {capacity} are reserved"
                    " in that window already",
                    hint=f"reserve at most {free} cores then, or choose another window",
                )
            r = Reservation(
                id=new_id("rsv"),
                group_id=group.id,
                cores=body.cores,
                starts_at=body.starts_at,
                ends_at=body.ends_at,
                hosts=sorted(set(body.hosts)) or None,
                created_by=who.name,
            )
            s.add(r)
            s.flush()
            s.refresh(r)
            out = reservation_out(r)
        self.wake_scheduler()
        return out

    def list(self, who: Principal) -> list[ReservationOut]:
        """Reservations not yet over: all for admins, their groups' for users."""
        with self.db.session() as s:
            query = select(Reservation).where(Reservation.ends_at > utcnow())
            if not who.is_admin:
                query = query.where(Reservation.group_id.in_(who.group_ids))
            return [reservation_out(r) for r in s.scalars(query.order_by(Reservation.starts_at))]

    def remove(self, who: Principal, reservation_id: str) -> None:
        who.require_admin()
        with self.db.session() as s:
            r = s.get(Reservation, reservation_id)
            if r is None:
                raise NotFound(f"no reservation {reservation_id!r}")
            s.delete(r)
        self.wake_scheduler()
