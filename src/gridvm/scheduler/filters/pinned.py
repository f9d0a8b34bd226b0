"""A stopped single-mode VM's disk, or its volumes, live on one host: it starts only there."""

from __future__ import annotations

import numpy as np

from gridvm.scheduler.filters.base import HostFilter
from gridvm.scheduler.pass_context import PassContext
from gridvm.scheduler.snapshot import VmDemand
from gridvm.scheduler.table import HostTable, Mask


def _pinned(table: HostTable, vm: VmDemand, ctx: PassContext) -> Mask:
    if vm.pinned_host is None:
        return np.ones(table.size, dtype=np.bool_)
    mask = np.zeros(table.size, dtype=np.bool_)
    index = table.index.get(vm.pinned_host)
    if index is not None:
        mask[index] = True
    return mask


PINNED = HostFilter("pinned", "not the host holding its disk or volumes", _pinned)
