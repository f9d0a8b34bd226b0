"""Placement as pure functions over snapshots: no I/O, no database."""

from gridvm.scheduler.placement import place
from gridvm.scheduler.snapshot import Decision, HostSnapshot, VmDemand

__all__ = ["Decision", "HostSnapshot", "VmDemand", "place"]
