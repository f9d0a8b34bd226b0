"""A VM runs only in a zone its image's trust class allows (``user`` images: the DMZ)."""

from __future__ import annotations

import numpy as np

from gridvm.scheduler.filters.base import HostFilter
from gridvm.scheduler.pass_context import PassContext
from gridvm.scheduler.snapshot import VmDemand
from gridvm.scheduler.table import HostTable, Mask


def _zone(table: HostTable, vm: VmDemand, ctx: PassContext) -> Mask:
    if not vm.zones:
        return np.ones(table.size, dtype=np.bool_)
    return table.static_mask(("zone", vm.zones), lambda h: h.zone in vm.zones)


ZONE = HostFilter("zone", "in a zone its image may not run in", _zone)
