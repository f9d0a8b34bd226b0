"""EASY backfill: the first VM that cannot start now gets a *shadow*: the host and the
time at which, as running VMs reach their walltime, it will fit. VMs behind it may
start meanwhile, but on the shadow host only if they end before that time or leave
it enough room then, so they never delay it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gridvm.scheduler.snapshot import VmDemand
from gridvm.scheduler.table import HostTable, Mask


@dataclass(frozen=True)
class Holdings:
    """Every VM holding resources, as columns: its host index, end time, cores, memory."""

    host: npt.NDArray[np.intp]
    ends_at: npt.NDArray[np.float64]
    vcpus: npt.NDArray[np.float64]
    memory_mb: npt.NDArray[np.float64]


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
    table: HostTable, vm: VmDemand, allowed: Mask, held: Holdings, now: float
) -> Shadow | None:
    """The earliest (time, host) at which ``vm`` fits among the ``allowed`` hosts as the
    VMs there end; None if it never fits (it needs more than any allowed host has).

    Vectorised: the holdings are sorted by host, then end time; a running sum per host
    of what ends gives each host's free room after each end."""
    fits_now = allowed & (table.free_cores >= vm.vcpus) & (table.free_memory_mb >= vm.memory_mb)
    if fits_now.any():
        first_fit = int(np.flatnonzero(fits_now)[0])
        return Shadow(
            vm.vm_id,
            first_fit,
            now,
            vm.vcpus,
            vm.memory_mb,
            float(table.free_cores[first_fit]) - vm.vcpus,
            float(table.free_memory_mb[first_fit]) - vm.memory_mb,
        )
    keep = allowed[held.host]
    if not keep.any():
        return None
    host, ends, cores, memory = (
        held.host[keep],
        held.ends_at[keep],
        held.vcpus[keep],
        held.memory_mb[keep],
    )
    order = np.lexsort((ends, host))
    host, ends, cores, memory = host[order], ends[order], cores[order], memory[order]
    # Running sums restarted at each host: total so far minus the total before the host.
    starts = np.flatnonzero(np.r_[True, host[1:] != host[:-1]])
    run_cores, run_memory = np.cumsum(cores), np.cumsum(memory)
    first = np.repeat(starts, np.diff(np.r_[starts, host.size]))
    freed_cores = run_cores - run_cores[first] + cores[first]
    freed_memory = run_memory - run_memory[first] + memory[first]
    room_cores = table.free_cores[host] + freed_cores
    room_memory = table.free_memory_mb[host] + freed_memory
    ok = np.flatnonzero((room_cores >= vm.vcpus) & (room_memory >= vm.memory_mb))
    if ok.size == 0:
        return None
    best = int(ok[np.argmin(ends[ok])])
    return Shadow(
        vm.vm_id,
        int(host[best]),
        max(float(ends[best]), now),
        vm.vcpus,
        vm.memory_mb,
        float(room_cores[best]) - vm.vcpus,
        float(room_memory[best]) - vm.memory_mb,
    )
