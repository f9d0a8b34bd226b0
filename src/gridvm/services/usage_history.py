"""Usage over time: core-hours per group per hour or day, computed from the VMs' runs
(vm_runs: each run's started_at .. ended_at, or now while it runs, times its cores).

The database keeps no usage time series (group_usage holds only each group's decayed total),
so the history comes from the runs. A VM stopped and started again, or redeployed, has one
run per start, so every run counts; suspended time counts too (the VM holds its cores).
Runs from before the runs were recorded (migration 0013) are only each VM's latest.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select

from gridvm.common.errors import InvalidInput
from gridvm.schemas.usage import Bucket, GroupSeries, UsageHistory
from gridvm.services.group_tree import group_paths
from gridvm.services.principal import Principal
from gridvm.store.db import Database
from gridvm.store.models import VmRun, utcnow

NO_GROUP = "(no group)"
MAX_DAYS = 366
# Up to this many days the buckets are hours; longer ranges have day buckets.
HOURLY_UP_TO_DAYS = 2


@dataclass(frozen=True)
class VmSpan:
    """What one run of a VM held and when: ``cores`` from ``started_at`` to ``ended_at``
    (None: now)."""

    group: str
    cores: int
    started_at: datetime
    ended_at: datetime | None


def check_days(days: int) -> None:
    if not 1 <= days <= MAX_DAYS:
        raise InvalidInput(
            f"days must be between 1 and {MAX_DAYS}, not {days}", hint="try days=7 or days=30"
        )


def bucket_for(days: int) -> Bucket:
    return Bucket.hour if days <= HOURLY_UP_TO_DAYS else Bucket.day


def bucket_starts(days: int, now: datetime) -> tuple[Bucket, list[datetime]]:
    """The buckets covering the last ``days`` days up to ``now``: the last one holds ``now``."""
    bucket = bucket_for(days)
    if bucket is Bucket.hour:
        step, count = timedelta(hours=1), days * 24
        last = now.replace(minute=0, second=0, microsecond=0)
    else:
        step, count = timedelta(days=1), days
        last = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return bucket, [last - step * (count - 1 - i) for i in range(count)]


def usage_history(spans: Iterable[VmSpan], days: int, now: datetime) -> UsageHistory:
    """Core-hours per group per bucket over the last ``days`` days (pure: no I/O).

    Every group with some use in the range gets a series, largest total first."""
    check_days(days)
    bucket, starts = bucket_starts(days, now)
    step = starts[1] - starts[0] if len(starts) > 1 else timedelta(hours=1)
    edges = [*starts, starts[-1] + step]
    by_group: dict[str, list[float]] = {}
    for span in spans:
        begin = max(span.started_at, edges[0])
        finish = min(span.ended_at or now, now, edges[-1])
        if finish <= begin or span.cores <= 0:
            continue
        values = by_group.setdefault(span.group, [0.0] * len(starts))
        for i, start in enumerate(starts):
            overlap = (min(finish, edges[i + 1]) - max(begin, start)).total_seconds()
            if overlap > 0:
                values[i] += span.cores * overlap / 3600
    series = [GroupSeries(group=g, core_hours=v) for g, v in by_group.items()]
    series.sort(key=lambda s: (-s.total, s.group))
    return UsageHistory(days=days, bucket=bucket, starts=starts, end=now, series=series)


class UsageHistoryService:
    def __init__(self, db: Database) -> None:
        self.db = db

    def history(self, who: Principal, days: int) -> UsageHistory:
        """The usage history of every group for admins; of a user's own groups otherwise."""
        who.require_user()
        check_days(days)
        now = utcnow()
        since = now - timedelta(days=days + 1)
        with self.db.session() as s:
            paths = group_paths(s)
            query = select(VmRun.group_id, VmRun.vcpus, VmRun.started_at, VmRun.ended_at).where(
                or_(VmRun.ended_at.is_(None), VmRun.ended_at >= since)
            )
            if not who.is_admin:
                query = query.where(VmRun.group_id.in_(who.group_ids))
            rows = s.execute(query).all()
        spans = [
            VmSpan(
                group=paths.get(group_id, NO_GROUP) if group_id else NO_GROUP,
                cores=int(cores),
                started_at=started,
                ended_at=ended,
            )
            for group_id, cores, started, ended in rows
        ]
        return usage_history(spans, days, now)
