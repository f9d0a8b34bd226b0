"""The host's labels must satisfy the VM's label selector (gridvm.scheduler.selectors)."""

from __future__ import annotations

import numpy as np

from gridvm.scheduler.filters.base import HostFilter
from gridvm.scheduler.pass_context import PassContext
from gridvm.scheduler.selectors import matches
from gridvm.scheduler.snapshot import VmDemand
from gridvm.scheduler.table import HostTable, Mask


def _labels(table: HostTable, vm: VmDemand, ctx: PassContext) -> Mask:
    if not vm.selector:
        return np.ones(table.size, dtype=np.bool_)
    return table.static_mask(("labels", vm.selector), lambda h: matches(vm.selector, h.labels))


LABELS = HostFilter("labels", "without the labels it asks for", _labels)
