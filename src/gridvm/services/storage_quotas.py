"""Image storage quotas: how many bytes of images (as stored) and how many images a user,
or a group with its sub-groups, may keep. Counted from the image rows each time, and
checked in the transaction that registers an image, so an over-quota upload (or saved
VM disk) is refused and leaves nothing. Volumes (persistent user disks) count in the
bytes with their full size, though not in the number of images."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridvm.common.units import format_size
from gridvm.scheduler.quotas import Subject, group_and_parents
from gridvm.services.group_tree import group_paths
from gridvm.store.models import Image, Quota, User, Volume

Stored = dict[Subject, tuple[int, int]]  # subject -> (bytes, images)


def _subjects(owner: str, group_id: str | None, paths: dict[str, str]) -> list[Subject]:
    """Who a stored thing of user ``owner`` in ``group_id`` counts for: the user, and the
    group with its parents."""
    subjects: list[Subject] = [("user", str(owner))]
    if group_id is not None and group_id in paths:
        subjects += [("group", p) for p in group_and_parents(paths[group_id])]
    return subjects


def stored_usage(s: Session, paths: dict[str, str]) -> Stored:
    usage: dict[Subject, tuple[int, int]] = {}
    rows = s.execute(
        select(User.name, Image.group_id, Image.size).join(User, User.id == Image.owner_id)
    ).all()
    for owner, group_id, size in rows:
        for subject in _subjects(owner, group_id, paths):
            used, count = usage.get(subject, (0, 0))
            usage[subject] = (used + int(size), count + 1)
    for subject, size in volume_usage(s, paths).items():
        used, count = usage.get(subject, (0, 0))
        usage[subject] = (used + size, count)
    return usage


def volume_usage(s: Session, paths: dict[str, str]) -> dict[Subject, int]:
    """Bytes of volumes per user and group (with its sub-groups), at their full size."""
    usage: dict[Subject, int] = {}
    rows = s.execute(
        select(User.name, Volume.group_id, Volume.size_bytes).join(User, User.id == Volume.owner_id)
    ).all()
    for owner, group_id, size in rows:
        for subject in _subjects(owner, group_id, paths):
            usage[subject] = usage.get(subject, 0) + int(size)
    return usage


def _limits(s: Session, owner_id: str, group_id: str | None) -> list[tuple[Subject, Quota]]:
    """The quotas that an image of ``owner_id`` in ``group_id`` counts against."""
    paths = group_paths(s)
    by_path = {path: gid for gid, path in paths.items()}
    wanted: dict[tuple[str, str], Subject] = {}
    owner = s.get_one(User, owner_id)
    wanted[("user", owner_id)] = ("user", owner.name)
    if group_id is not None and group_id in paths:
        for path in group_and_parents(paths[group_id]):
            wanted[("group", by_path[path])] = ("group", path)
    found = []
    for q in s.scalars(select(Quota).where(Quota.subject_id.in_([i for _, i in wanted]))):
        subject = wanted.get((q.subject_kind, q.subject_id))
        if subject is not None and (q.image_bytes is not None or q.images is not None):
            found.append((subject, q))
    return found


def storage_refusal(
    s: Session, owner_id: str, group_id: str | None, size: int, *, volume: bool = False
) -> str | None:
    """Why one more image of ``size`` bytes may not be kept (size 0: is there room at all);
    with ``volume``, a volume of that size (which counts in bytes only)."""
    limits = _limits(s, owner_id, group_id)
    if not limits:
        return None
    usage = stored_usage(s, group_paths(s))
    for (kind, name), q in limits:
        used, count = usage.get((kind, name), (0, 0))
        if not volume and q.images is not None and count + 1 > q.images:
            return f"{kind} {name} may keep {q.images} images and has {count}"
        if q.image_bytes is not None and used + max(size, 1) > q.image_bytes:
            need = f" and this one is {format_size(size)}" if size else ""
            what = "images and volumes" if volume else "images"
            return (
                f"{kind} {name} may store {format_size(q.image_bytes)} of {what}, has"
                f" {format_size(used)}{need}"
            )
    return None
