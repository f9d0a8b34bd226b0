"""Cache affinity: a host that already has the VM's image (or is fetching it for a VM
placed earlier in the pass) starts it without a download, so a burst reuses few copies."""

from __future__ import annotations

from gridvm.scheduler.snapshot import VmDemand
from gridvm.scheduler.table import Floats, HostTable
from gridvm.scheduler.weighers.base import Hosts, Weigher


def _cached(table: HostTable, vm: VmDemand, hosts: Hosts) -> Floats:
    return table.cached(vm.image_digest)[hosts].astype(float)


def _some_host_has_it(table: HostTable, vm: VmDemand) -> bool:
    return table.any_cached(vm.image_digest)


CACHE_AFFINITY = Weigher("cache_affinity", _cached, _some_host_has_it)
