"""Only hosts that are online and enabled (not disabled or draining) take new VMs."""

from __future__ import annotations

from gridvm.scheduler.filters.base import HostFilter
from gridvm.scheduler.pass_context import PassContext
from gridvm.scheduler.snapshot import VmDemand
from gridvm.scheduler.table import HostTable, Mask


def _online(table: HostTable, vm: VmDemand, ctx: PassContext) -> Mask:
    return table.static_mask("online", lambda h: h.online)


def _enabled(table: HostTable, vm: VmDemand, ctx: PassContext) -> Mask:
    return table.static_mask("enabled", lambda h: h.enabled)


ONLINE = HostFilter("online", "offline", _online)
ENABLED = HostFilter("enabled", "disabled (draining)", _enabled)
