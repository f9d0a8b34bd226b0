"""What the scheduler sees: literal, immutable pictures of hosts and waiting VMs."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class HostSnapshot:
    name: str
    cores: int
    memory_mb: int
    used_cores: int = 0
    used_memory_mb: int = 0
    enabled: bool = True
    online: bool = True
    arch: str = "x86_64"
    cached_images: frozenset[str] = field(default_factory=frozenset)

    @property
    def free_cores(self) -> int:
        return self.cores - self.used_cores

    @property
    def free_memory_mb(self) -> int:
        return self.memory_mb - self.used_memory_mb


@dataclass(frozen=True)
class VmDemand:
    vm_id: str
    vcpus: int
    memory_mb: int
    image_digest: str
    arch: str = "x86_64"
    # Set for a single-mode VM whose disk lives on one host.
    pinned_host: str | None = None


@dataclass(frozen=True)
class Decision:
    """Where each placed VM goes, and for every VM left waiting, why in words."""

    placements: dict[str, str]
    reasons: dict[str, str]
