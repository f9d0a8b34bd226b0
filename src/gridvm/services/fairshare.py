"""Fair-share accounting: each group's usage in core-seconds (and MiB-seconds), decayed
with the site's half-life and brought up to date by every scheduling pass; and the
share tree as ``gridvm share`` shows it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gridvm.scheduler import Policy, decay, fairshare_factors
from gridvm.scheduler.fairshare import normalised_shares, subtree_usage
from gridvm.schemas.scheduling import ShareRow, ShareTree
from gridvm.schemas.vms import VmState
from gridvm.services.group_tree import group_paths
from gridvm.store.db import Database
from gridvm.store.models import Group, GroupUsage, Vm, utcnow

# VMs that use their cores (and so accrue usage).
USING = [VmState.booting.value, VmState.running.value, VmState.stopping.value]


def accrue_usage(s: Session, now: datetime, half_life_s: float) -> dict[str, float]:
    """Decay every group's usage to ``now`` and add what its VMs used since the last
    update; returns group id -> core-seconds. Call it inside the pass's transaction."""
    holding: dict[str, tuple[int, int]] = {
        str(group_id): (int(cores or 0), int(memory or 0))
        for group_id, cores, memory in s.execute(
            select(Vm.group_id, func.sum(Vm.vcpus), func.sum(Vm.memory_mb))
            .where(Vm.state.in_(USING), Vm.group_id.is_not(None))
            .group_by(Vm.group_id)
        ).all()
    }
    rows = {u.group_id: u for u in s.scalars(select(GroupUsage).with_for_update())}
    result = {}
    for group_id in s.scalars(select(Group.id)):
        row = rows.get(group_id)
        if row is None:
            row = GroupUsage(group_id=group_id, core_seconds=0.0, memory_mb_seconds=0.0)
            row.updated_at = now
            s.add(row)
        elapsed = max(0.0, (now - row.updated_at).total_seconds())
        cores, memory = holding.get(group_id, (0, 0))
        row.core_seconds = decay(row.core_seconds, elapsed, half_life_s) + cores * elapsed
        row.memory_mb_seconds = (
            decay(row.memory_mb_seconds, elapsed, half_life_s) + memory * elapsed
        )
        row.updated_at = now
        result[group_id] = row.core_seconds
    return result


def tree_of(s: Session) -> tuple[dict[str, str], dict[str, float]]:
    """(group id -> path, path -> shares)."""
    paths = group_paths(s)
    shares = {paths[g.id]: g.shares for g in s.scalars(select(Group))}
    return paths, shares


class FairShareService:
    def __init__(self, db: Database, policy: Policy) -> None:
        self.db = db
        self.policy = policy

    def tree(self) -> ShareTree:
        """Every group: shares, decayed usage, factor, what runs and waits."""
        with self.db.session() as s:
            paths, shares = tree_of(s)
            now = utcnow()
            usage = {
                paths[u.group_id]: decay(
                    u.core_seconds,
                    (now - u.updated_at).total_seconds(),
                    self.policy.half_life_s,
                )
                for u in s.scalars(select(GroupUsage))
                if u.group_id in paths
            }
            running = _counts(s, paths, [*USING, VmState.scheduled.value, VmState.staging.value])
            pending = _counts(s, paths, [VmState.pending.value])
        factors = fairshare_factors(self.policy.fairshare, shares, usage)
        norm = normalised_shares(shares)
        subtree = subtree_usage(shares, usage)
        total = sum(v for p, v in subtree.items() if "/" not in p)
        rows = [
            ShareRow(
                group=path,
                shares=shares[path],
                normalised_share=norm.get(path, 0.0),
                usage_core_hours=subtree.get(path, 0.0) / 3600,
                usage_fraction=subtree.get(path, 0.0) / total if total > 0 else 0.0,
                factor=factors.get(path, 1.0),
                running_vms=running.get(path, (0, 0))[0],
                running_cores=running.get(path, (0, 0))[1],
                pending_vms=pending.get(path, (0, 0))[0],
            )
            for path in sorted(shares)
        ]
        return ShareTree(
            algorithm=self.policy.fairshare.value,
            half_life_s=self.policy.half_life_s,
            groups=rows,
        )


def _counts(s: Session, paths: Mapping[str, str], states: list[str]) -> dict[str, tuple[int, int]]:
    out: dict[str, tuple[int, int]] = {}
    for group_id, n, cores in s.execute(
        select(Vm.group_id, func.count(), func.sum(Vm.vcpus))
        .where(Vm.state.in_(states), Vm.group_id.is_not(None))
        .group_by(Vm.group_id)
    ).all():
        if group_id is not None and group_id in paths:
            out[paths[group_id]] = (int(n), int(cores or 0))
    return out
