"""Reserved cores: during a reservation's window only its group's VMs use them, and a VM
whose walltime would reach into the window does not get them either.

A reservation's cores are laid out on hosts (the named ones, or all, in name order)
once per pass; the group's own running VMs on a host use its reservation first.
"""

from __future__ import annotations

import numpy as np

from gridvm.scheduler.filters.base import HostFilter
from gridvm.scheduler.pass_context import PassContext
from gridvm.scheduler.snapshot import VmDemand
from gridvm.scheduler.table import Floats, HostTable, Mask


def held_for_others(table: HostTable, vm: VmDemand, ctx: PassContext) -> Floats:
    """Cores per host that reservations of other groups keep from ``vm`` while it runs."""
    held = np.zeros(table.size, dtype=np.float64)
    start, end = ctx.now, ctx.now + vm.walltime_s
    for r in ctx.reservations:
        if r.group == vm.group or r.end <= start or r.start >= end:
            continue
        use = ctx.reservation_use.get(r.id, {})
        for host, cores in ctx.reserved_layout.get(r.id, {}).items():
            held[host] += max(0.0, cores - use.get(host, 0.0))
    return held


def _reservations(table: HostTable, vm: VmDemand, ctx: PassContext) -> Mask:
    if not ctx.reservations:
        return np.ones(table.size, dtype=np.bool_)
    return table.free_cores - held_for_others(table, vm, ctx) >= vm.vcpus


def _any_reservation(table: HostTable, vm: VmDemand, ctx: PassContext) -> bool:
    return bool(ctx.reservations)


RESERVATIONS = HostFilter(
    "reservations", "reserved for another group", _reservations, _any_reservation
)
