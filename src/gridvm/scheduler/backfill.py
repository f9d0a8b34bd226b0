"""EASY backfill: the first VM that cannot start now gets a *shadow*: the host and the
time at which, as running VMs reach their walltime, it will fit. VMs behind it may
start meanwhile, but on the shadow host only if they end before that time or leave
it enough room then, so they never delay it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gridvm.scheduler.snapshot import VmDemand
from gridvm.scheduler.table import HostTable, Mask

# Per host index: (ends_at, vcpus, memory_mb) of each VM holding resources there.
Ends = dict[int, list[tuple[float, int, int]]]


@dataclass
class Shadow:
    vm_id: str
    host: int
    time: float
    need_cores: int
    need_memory_mb: int
    # Room on the shadow host at ``time`` beyond what the blocked VM needs; VMs that
    # run past ``time`` there use it up.
    spare_cores: float
    spare_memory_mb: float

    def allows(self, vm: VmDemand, now: float) -> bool:
        """Whether ``vm`` may start on the shadow host now without delaying the blocked VM."""
        if now + vm.walltime_s <= self.time:
            return True
        return vm.vcpus <= self.spare_cores and vm.memory_mb <= self.spare_memory_mb

    def charge(self, vm: VmDemand, now: float) -> None:
        if now + vm.walltime_s > self.time:
            self.spare_cores -= vm.vcpus
            self.spare_memory_mb -= vm.memory_mb


def find_shadow(
    table: HostTable, vm: VmDemand, allowed: Mask, ends: Ends, now: float
) -> Shadow | None:
    """The earliest (time, host) at which ``vm`` fits among the ``allowed`` hosts as the
    VMs there end; None if it never fits (it needs more than any allowed host has)."""
    best: Shadow | None = None
    fits_at_all = allowed & (table.cores >= vm.vcpus) & (table.memory_mb >= vm.memory_mb)
    for host in np.flatnonzero(fits_at_all):
        free_cores = float(table.free_cores[host])
        free_memory = float(table.free_memory_mb[host])
        when = now
        if free_cores < vm.vcpus or free_memory < vm.memory_mb:
            when = np.inf
            for ends_at, cores, memory in sorted(ends.get(int(host), [])):
                free_cores += cores
                free_memory += memory
                if free_cores >= vm.vcpus and free_memory >= vm.memory_mb:
                    when = max(ends_at, now)
                    break
        if when == np.inf:
            continue
        if best is None or when < best.time:
            best = Shadow(
                vm.vm_id,
                int(host),
                float(when),
                vm.vcpus,
                vm.memory_mb,
                free_cores - vm.vcpus,
                free_memory - vm.memory_mb,
            )
    return best
