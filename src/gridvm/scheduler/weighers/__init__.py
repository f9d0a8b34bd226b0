"""Host weighers; each gets its multiplier from the site's policy (0 turns it off)."""

from __future__ import annotations

from gridvm.scheduler.weighers.base import Weigher
from gridvm.scheduler.weighers.cache import CACHE_AFFINITY
from gridvm.scheduler.weighers.free_memory import FREE_MEMORY
from gridvm.scheduler.weighers.load import LOAD
from gridvm.scheduler.weighers.spread import SPREAD

WEIGHERS: tuple[Weigher, ...] = (SPREAD, FREE_MEMORY, CACHE_AFFINITY, LOAD)

__all__ = ["WEIGHERS", "Weigher"]
