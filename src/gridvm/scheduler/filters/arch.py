"""The host's CPU architecture must be the one the image is built for."""

from __future__ import annotations

from gridvm.scheduler.filters.base import HostFilter
from gridvm.scheduler.pass_context import PassContext
from gridvm.scheduler.snapshot import VmDemand
from gridvm.scheduler.table import HostTable, Mask


def _arch(table: HostTable, vm: VmDemand, ctx: PassContext) -> Mask:
    return table.static_mask(("arch", vm.arch), lambda h: h.arch == vm.arch)


ARCH = HostFilter("arch", "of another architecture", _arch)
