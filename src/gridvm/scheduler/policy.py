"""The site's scheduling policy: weigher multipliers, priority weights, backfill."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class FairShareAlgorithm(StrEnum):
    classic = "classic"  # factor 2^(-U/S) (Slurm's classic fair share)
    fair_tree = "fair-tree"  # rank in a depth-first walk of the tree ordered by S/U


@dataclass(frozen=True)
class Policy:
    # Weigher multipliers (see gridvm.scheduler.weighers): spread > 0 spreads VMs over
    # hosts (Nova's default), < 0 packs them.
    spread: float = 1.0
    free_memory: float = 0.0
    cache_affinity: float = 2.0
    load: float = 0.25
    # Pick at random among at most this many best hosts within tie_tolerance of the
    # best weight, so that several schedulers (or stale pictures) do not herd.
    top_k: int = 3
    tie_tolerance: float = 0.05
    seed: int | None = None
    # Priority (Slurm's multifactor): weights of the fair-share, age and size factors.
    weight_fairshare: float = 10_000.0
    weight_age: float = 1_000.0
    weight_size: float = 0.0
    max_age_s: float = 7 * 86400.0  # the age factor reaches 1 at this age
    fairshare: FairShareAlgorithm = FairShareAlgorithm.classic
    half_life_s: float = 7 * 86400.0  # usage decays by half in this time
    # EASY backfill: lower-priority VMs with a walltime may start when they cannot delay
    # the first waiting VM; without it, nothing passes the first waiting VM.
    backfill: bool = True

    def multiplier(self, weigher: str) -> float:
        value = getattr(self, weigher)
        assert isinstance(value, float | int)
        return float(value)
