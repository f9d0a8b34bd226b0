"""Quotas per user and per group: set by admins, enforced by the scheduler at placement.

What a subject uses is always counted from the VMs that hold resources (never kept as
a counter), so it cannot drift. A group's quota covers its sub-groups too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from gridvm.common.errors import NotFound
from gridvm.common.names import new_id
from gridvm.scheduler import QuotaLimit, Usage
from gridvm.scheduler.quotas import Subject, group_and_parents
from gridvm.schemas.scheduling import QuotaOut, QuotaSet, QuotaSubject
from gridvm.schemas.vms import ACTIVE_STATES
from gridvm.services.group_tree import group_paths
from gridvm.services.principal import Principal
from gridvm.services.storage_quotas import stored_usage, volume_usage
from gridvm.store.db import Database
from gridvm.store.models import Group, Quota, User, Vm

_ACTIVE = [s.value for s in ACTIVE_STATES]


def active_usage(s: Session, paths: dict[str, str]) -> dict[Subject, Usage]:
    """What every user and group (with its sub-groups) holds now."""
    usage: dict[Subject, Usage] = {}
    rows = s.execute(
        select(User.name, Vm.group_id, Vm.vcpus, Vm.memory_mb)
        .join(User, User.id == Vm.owner_id)
        .where(Vm.state.in_(_ACTIVE))
    ).all()
    for user, group_id, vcpus, memory in rows:
        subjects: list[Subject] = [("user", str(user))]
        if group_id is not None and group_id in paths:
            subjects += [("group", p) for p in group_and_parents(paths[group_id])]
        for subject in subjects:
            u = usage.setdefault(subject, Usage())
            u.cores += int(vcpus)
            u.memory_mb += int(memory)
            u.vms += 1
    return usage


def _quotas_by_subject(s: Session, paths: dict[str, str]) -> Iterator[tuple[Subject, Quota]]:
    """Every quota row with its subject as the scheduler names it (user name, group path)."""
    users = {str(i): str(n) for i, n in s.execute(select(User.id, User.name)).all()}
    for q in s.scalars(select(Quota)):
        name = users.get(q.subject_id) if q.subject_kind == "user" else paths.get(q.subject_id)
        if name is not None:
            yield (q.subject_kind, name), q


def quota_limits(s: Session, paths: dict[str, str]) -> dict[Subject, QuotaLimit]:
    return {
        subject: QuotaLimit(q.cores, q.memory_mb, q.vms)
        for subject, q in _quotas_by_subject(s, paths)
    }


def requester_quotas(
    s: Session, paths: dict[str, str], who: Principal
) -> dict[Subject, QuotaLimit]:
    """The quotas a request of ``who`` counts against: theirs and those of their primary
    group (the group their VMs are charged to) and every group above it."""
    subjects: set[Subject] = {("user", who.name)}
    group = paths.get(who.primary_group_id) if who.primary_group_id else None
    if group is not None:
        subjects |= {("group", g) for g in group_and_parents(group)}
    return {k: v for k, v in quota_limits(s, paths).items() if k in subjects}


def _storage_limits(
    s: Session, paths: dict[str, str]
) -> dict[Subject, tuple[int | None, int | None]]:
    return {subject: (q.image_bytes, q.images) for subject, q in _quotas_by_subject(s, paths)}


def _quota_of(kind: QuotaSubject, subject_id: str) -> Select[Any]:
    return select(Quota).where(Quota.subject_kind == kind.value, Quota.subject_id == subject_id)


class QuotaService:
    def __init__(self, db: Database, wake_scheduler: Callable[[], None] = lambda: None) -> None:
        self.db = db
        # A changed quota may let waiting VMs start (or hold back the next ones) at once.
        self.wake_scheduler = wake_scheduler

    def _subject_id(self, s: Session, kind: QuotaSubject, name: str) -> str:
        if kind == QuotaSubject.user:
            user = s.scalar(select(User).where(User.name == name))
            if user is None:
                raise NotFound(f"no user {name!r}", hint="see the users with: gridvm user list")
            return user.id
        group = s.scalar(select(Group).where(Group.name == name))
        if group is None:
            raise NotFound(f"no group {name!r}", hint="see the groups with: gridvm group list")
        return group.id

    def set(self, who: Principal, kind: QuotaSubject, name: str, body: QuotaSet) -> QuotaOut:
        who.require_admin()
        with self.db.session() as s:
            subject_id = self._subject_id(s, kind, name)
            quota: Quota | None = s.scalar(_quota_of(kind, subject_id))
            if quota is None:
                quota = Quota(id=new_id("quota"), subject_kind=kind.value, subject_id=subject_id)
                s.add(quota)
            quota.cores, quota.memory_mb, quota.vms = body.cores, body.memory_mb, body.vms
            quota.image_bytes, quota.images = body.image_bytes, body.images
            s.flush()
        self.wake_scheduler()
        return next(q for q in self.show(who) if (q.kind, q.name) == (kind, name))

    def remove(self, who: Principal, kind: QuotaSubject, name: str) -> None:
        who.require_admin()
        with self.db.session() as s:
            subject_id = self._subject_id(s, kind, name)
            existing: Quota | None = s.scalar(_quota_of(kind, subject_id))
            if existing is None:
                raise NotFound(f"{kind.value} {name} has no quota")
            s.delete(existing)
        self.wake_scheduler()

    def show(self, who: Principal) -> list[QuotaOut]:
        """Every quota for admins; for a user, theirs and their groups' (with what is used)."""
        with self.db.session() as s:
            paths = group_paths(s)
            usage = active_usage(s, paths)
            stored = stored_usage(s, paths)
            volumes = volume_usage(s, paths)
            storage = _storage_limits(s, paths)
            mine = {("user", who.name)} | {("group", paths[g]) for g in who.group_ids if g in paths}
            out = []
            for (kind, name), limit in sorted(quota_limits(s, paths).items()):
                shown_name = name.rsplit("/", 1)[-1] if kind == "group" else name
                if not who.is_admin and (kind, name) not in mine:
                    continue
                used = usage.get((kind, name), Usage())
                image_bytes, images = storage.get((kind, name), (None, None))
                kept_bytes, kept = stored.get((kind, name), (0, 0))
                out.append(
                    QuotaOut(
                        kind=QuotaSubject(kind),
                        name=shown_name,
                        cores=limit.cores,
                        memory_mb=limit.memory_mb,
                        vms=limit.vms,
                        used_cores=used.cores,
                        used_memory_mb=used.memory_mb,
                        used_vms=used.vms,
                        image_bytes=image_bytes,
                        images=images,
                        used_image_bytes=kept_bytes,
                        used_images=kept,
                        used_volume_bytes=volumes.get((kind, name), 0),
                    )
                )
            return out
