"""Placement, fair share, priority and quotas as pure functions over snapshots: no I/O,
no database. The server's scheduling loop builds the pictures and writes the decision."""

from gridvm.scheduler.fairshare import decay, fairshare_factors
from gridvm.scheduler.placement import place
from gridvm.scheduler.policy import FairShareAlgorithm, Policy
from gridvm.scheduler.priority import priorities
from gridvm.scheduler.quotas import QuotaBook, QuotaLimit, Usage
from gridvm.scheduler.ranking import FairShareInputs
from gridvm.scheduler.snapshot import (
    Affinity,
    Decision,
    HostSnapshot,
    Reservation,
    RunningVm,
    VmDemand,
)

__all__ = [
    "Affinity",
    "Decision",
    "FairShareAlgorithm",
    "FairShareInputs",
    "HostSnapshot",
    "Policy",
    "QuotaBook",
    "QuotaLimit",
    "Reservation",
    "RunningVm",
    "Usage",
    "VmDemand",
    "decay",
    "fairshare_factors",
    "place",
    "priorities",
]
