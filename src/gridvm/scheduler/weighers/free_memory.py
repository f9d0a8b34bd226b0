"""Free memory left after placing, as a fraction of the host's memory."""

from __future__ import annotations

import numpy as np

from gridvm.scheduler.snapshot import VmDemand
from gridvm.scheduler.table import Floats, HostTable
from gridvm.scheduler.weighers.base import Hosts, Weigher


def _free_memory_fraction(table: HostTable, vm: VmDemand, hosts: Hosts) -> Floats:
    memory = table.memory_mb[hosts]
    left = table.free_memory_mb[hosts] - vm.memory_mb
    return np.divide(left, memory, out=np.zeros_like(left), where=memory > 0)


FREE_MEMORY = Weigher("free_memory", _free_memory_fraction)
