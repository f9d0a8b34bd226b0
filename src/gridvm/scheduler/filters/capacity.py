"""Free cores, memory and disk (disk only on hosts that report it) for the VM."""

from __future__ import annotations

from gridvm.scheduler.filters.base import HostFilter
from gridvm.scheduler.pass_context import PassContext
from gridvm.scheduler.snapshot import VmDemand
from gridvm.scheduler.table import HostTable, Mask


def _cores(table: HostTable, vm: VmDemand, ctx: PassContext) -> Mask:
    return table.free_cores >= vm.vcpus


def _memory(table: HostTable, vm: VmDemand, ctx: PassContext) -> Mask:
    return table.free_memory_mb >= vm.memory_mb


def _disk(table: HostTable, vm: VmDemand, ctx: PassContext) -> Mask:
    untracked: Mask = table.disk_gb == 0
    return untracked | (table.free_disk_gb >= vm.disk_gb)


CORES = HostFilter("cores", "short of free cores", _cores)
MEMORY = HostFilter("memory", "short of free memory", _memory)


def _disk_applies(table: HostTable, vm: VmDemand, ctx: PassContext) -> bool:
    return vm.disk_gb > 0 and table.tracks_disk


DISK = HostFilter("disk", "short of free disk", _disk, _disk_applies)
