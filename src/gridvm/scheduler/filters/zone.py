"""A VM runs only on a host serving a zone its image's trust class allows (``site`` and
``certified`` images: trusted or DMZ; ``user`` images: the DMZ only)."""

from __future__ import annotations

import numpy as np

from gridvm.scheduler.filters.base import HostFilter
from gridvm.scheduler.pass_context import PassContext
from gridvm.scheduler.snapshot import VmDemand
from gridvm.scheduler.table import HostTable, Mask


def _zone(table: HostTable, vm: VmDemand, ctx: PassContext) -> Mask:
    if not vm.zones:
        return np.ones(table.size, dtype=np.bool_)
    return table.static_mask(("zone", vm.zones), lambda h: bool(h.zones & vm.zones))


ZONE = HostFilter("zone", "in a zone its image may not run in", _zone)
