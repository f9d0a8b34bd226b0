"""Usage over time: core-hours per group per time bucket, as the API and the portal show it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from gridvm.schemas.base import Wire


class Bucket(StrEnum):
    hour = "hour"
    day = "day"


class GroupSeries(Wire):
    group: str  # its path: physics/cms; "(no group)" for VMs without one
    core_hours: list[float]  # one value per bucket of UsageHistory.starts

    @property
    def total(self) -> float:
        return sum(self.core_hours)


class UsageHistory(Wire):
    """Core-hours each group's VMs used in each bucket (each run of a VM counts from its start
    to its end, or to now while it runs; a restarted or redeployed VM counts every run)."""

    days: int
    bucket: Bucket
    starts: list[datetime]  # the start of each bucket, oldest first (UTC)
    end: datetime
    series: list[GroupSeries]
