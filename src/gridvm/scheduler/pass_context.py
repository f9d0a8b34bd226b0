"""What a filter or weigher may know besides the hosts and the VM: the time, the
reservations, and where the members of each deployment are."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from gridvm.scheduler.snapshot import Reservation


@dataclass
class PassContext:
    now: float
    reservations: Sequence[Reservation] = ()
    # Deployment -> host index -> how many of its members are there (running, or placed
    # this pass).
    members: dict[str, dict[int, int]] = field(default_factory=dict)
    # Reservation id -> its cores per host index (how the reserved cores are laid out).
    reserved_layout: dict[str, dict[int, float]] = field(default_factory=dict)
    # Reservation id -> cores its group uses now on each host index (they use the
    # reservation first).
    reservation_use: dict[str, dict[int, float]] = field(default_factory=dict)
