"""Host filters, in the order they are asked: a host is counted against the first that
turns it down, so a waiting VM's reason names the most basic obstacle first."""

from __future__ import annotations

from gridvm.scheduler.filters.affinity import DIFFERENT_HOSTS, SAME_HOST
from gridvm.scheduler.filters.arch import ARCH
from gridvm.scheduler.filters.base import HostFilter
from gridvm.scheduler.filters.capacity import CORES, DISK, MEMORY
from gridvm.scheduler.filters.host_state import ENABLED, ONLINE
from gridvm.scheduler.filters.labels import LABELS
from gridvm.scheduler.filters.pinned import PINNED
from gridvm.scheduler.filters.reservations import RESERVATIONS
from gridvm.scheduler.filters.zone import ZONE

DEFAULT_FILTERS: tuple[HostFilter, ...] = (
    PINNED,
    ONLINE,
    ENABLED,
    ARCH,
    ZONE,
    LABELS,
    SAME_HOST,
    DIFFERENT_HOSTS,
    CORES,
    MEMORY,
    DISK,
    RESERVATIONS,
)
# Filters whose answer cannot change during a pass (the rest depend on usage).
STATIC_FILTERS = frozenset({"pinned", "online", "enabled", "arch", "zone", "labels"})

__all__ = ["DEFAULT_FILTERS", "STATIC_FILTERS", "HostFilter"]
