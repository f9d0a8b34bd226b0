"""Free cores left after placing, as a fraction of the host: a positive multiplier spreads
VMs over hosts, a negative one packs them (fills hosts one after the other)."""

from __future__ import annotations

import numpy as np

from gridvm.scheduler.snapshot import VmDemand
from gridvm.scheduler.table import Floats, HostTable
from gridvm.scheduler.weighers.base import Hosts, Weigher


def _free_core_fraction(table: HostTable, vm: VmDemand, hosts: Hosts) -> Floats:
    cores = table.cores[hosts]
    left = table.free_cores[hosts] - vm.vcpus
    return np.divide(left, cores, out=np.zeros_like(left), where=cores > 0)


SPREAD = Weigher("spread", _free_core_fraction)
