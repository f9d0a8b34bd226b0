"""What the scheduler sees: literal, immutable pictures of hosts, waiting VMs and the site's
policy. The server builds them from the database; tests and benchmarks write them by hand."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class HostSnapshot:
    name: str
    cores: int
    memory_mb: int
    used_cores: int = 0
    used_memory_mb: int = 0
    disk_gb: int = 0  # 0: not tracked (the host did not say)
    used_disk_gb: int = 0
    enabled: bool = True  # False: disabled or draining, keeps its VMs, gets no new ones
    online: bool = True
    arch: str = "x86_64"
    # Network zones the host serves (a bridge per zone: see the networking layer).
    zones: frozenset[str] = frozenset({"trusted", "dmz"})
    labels: Mapping[str, str] = field(default_factory=dict)
    cached_images: frozenset[str] = field(default_factory=frozenset)
    load: float = 0.0  # busy fraction of its cores (0 idle, 1 all busy), from the agent

    @property
    def free_cores(self) -> int:
        return self.cores - self.used_cores

    @property
    def free_memory_mb(self) -> int:
        return self.memory_mb - self.used_memory_mb


class Affinity(StrEnum):
    none = "none"
    same_host = "same-host"  # every member of the deployment on one host
    different_hosts = "different-hosts"  # no two members on one host


@dataclass(frozen=True, slots=True)
class VmDemand:
    vm_id: str
    vcpus: int
    memory_mb: int
    image_digest: str
    disk_gb: int = 0
    arch: str = "x86_64"
    # Zones the VM may run in (from its image's trust class and the request); empty: any.
    zones: frozenset[str] = frozenset()
    # A label selector (see gridvm.scheduler.selectors), e.g. "site in (a,b), mem_gb >= 64".
    selector: str = ""
    # Set for a single-mode VM whose disk lives on one host.
    pinned_host: str | None = None
    group: str = ""  # the owner's group path, e.g. "physics/cms"
    user: str = ""
    deployment: str = ""
    submitted_at: float = 0.0  # seconds since the epoch
    walltime_s: int = 3600
    gang: bool = False  # all of the deployment's pending members start together, or none
    affinity: Affinity = Affinity.none


@dataclass(frozen=True, slots=True)
class RunningVm:
    """A VM holding resources now; what backfill and affinity need to know of it."""

    host: str
    vcpus: int
    memory_mb: int
    ends_at: float  # when its walltime runs out (seconds since the epoch)
    group: str = ""
    deployment: str = ""


@dataclass(frozen=True, slots=True)
class Reservation:
    """``cores`` cores kept for ``group`` from ``start`` to ``end`` (seconds since the
    epoch), on the named hosts or on any host (``hosts`` empty)."""

    id: str
    group: str
    cores: int
    start: float
    end: float
    hosts: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Decision:
    """Where each placed VM goes, and for every VM left waiting, why in words."""

    placements: dict[str, str]
    reasons: dict[str, str]
    # The order the VMs were considered in (highest priority first), with their priority.
    priorities: dict[str, float] = field(default_factory=dict)
