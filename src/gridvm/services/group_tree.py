"""Groups as a tree: each group's path (``physics/cms``) from its parents."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridvm.store.models import Group


def group_paths(s: Session) -> dict[str, str]:
    """Group id -> path, for every group."""
    groups = {g.id: g for g in s.scalars(select(Group))}
    paths: dict[str, str] = {}

    def path_of(group_id: str, seen: frozenset[str] = frozenset()) -> str:
        if group_id in paths:
            return paths[group_id]
        group = groups[group_id]
        parent = group.parent_id
        if parent is None or parent not in groups or parent in seen:
            path = group.name
        else:
            path = f"{path_of(parent, seen | {group_id})}/{group.name}"
        paths[group_id] = path
        return path

    for group_id in groups:
        path_of(group_id)
    return paths
