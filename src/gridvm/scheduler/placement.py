"""First-fit placement by free cores and memory, preferring hosts that cache the image.

VMs are taken in the order given (the caller decides priority). A host that
gets a VM for an image counts as caching it for the rest of the pass, so a
burst of VMs of one image lands on few hosts and each downloads it once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from gridvm.scheduler.snapshot import Decision, HostSnapshot, VmDemand


@dataclass
class _HostLoad:
    snapshot: HostSnapshot
    used_cores: int
    used_memory_mb: int
    images: set[str] = field(default_factory=set)

    @property
    def free_cores(self) -> int:
        return self.snapshot.cores - self.used_cores

    @property
    def free_memory_mb(self) -> int:
        return self.snapshot.memory_mb - self.used_memory_mb


def _rejection(load: _HostLoad, vm: VmDemand) -> str | None:
    """Why ``load`` cannot take ``vm`` now, as a short phrase, or None if it can."""
    host = load.snapshot
    if vm.pinned_host is not None and host.name != vm.pinned_host:
        return "not the host holding its disk"
    if not host.online:
        return "offline"
    if not host.enabled:
        return "disabled (draining)"
    if host.arch != vm.arch:
        return f"of another architecture ({host.arch})"
    if load.free_cores < vm.vcpus:
        return "short of free cores"
    if load.free_memory_mb < vm.memory_mb:
        return "short of free memory"
    return None


def _weight(load: _HostLoad, vm: VmDemand) -> tuple[int, int, int, str]:
    cached = 1 if vm.image_digest in load.images else 0
    return (cached, load.free_cores, load.free_memory_mb, load.snapshot.name)


def _reason(vm: VmDemand, causes: Counter[str], host_count: int) -> str:
    want = f"{vm.vcpus} vCPU{'s' if vm.vcpus != 1 else ''} and {vm.memory_mb} MiB"
    if host_count == 0:
        return f"waiting for a host: no host is registered (needs {want})"
    parts = [f"{n} host{' is' if n == 1 else 's are'} {cause}" for cause, n in causes.most_common()]
    return f"no host can take {want} now: " + ", ".join(parts)


def place(pending: Sequence[VmDemand], hosts: Sequence[HostSnapshot]) -> Decision:
    loads = [_HostLoad(h, h.used_cores, h.used_memory_mb, set(h.cached_images)) for h in hosts]
    placements: dict[str, str] = {}
    reasons: dict[str, str] = {}
    for vm in pending:
        causes: Counter[str] = Counter()
        candidates: list[_HostLoad] = []
        for load in loads:
            why_not = _rejection(load, vm)
            if why_not is None:
                candidates.append(load)
            else:
                causes[why_not] += 1
        if not candidates:
            reasons[vm.vm_id] = _reason(vm, causes, len(loads))
            continue
        best = max(candidates, key=lambda load: _weight(load, vm))
        best.used_cores += vm.vcpus
        best.used_memory_mb += vm.memory_mb
        best.images.add(vm.image_digest)
        placements[vm.vm_id] = best.snapshot.name
    return Decision(placements=placements, reasons=reasons)
