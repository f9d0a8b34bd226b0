"""Affinity between members of a deployment: all on one host, or no two on one host."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from gridvm.scheduler.filters.base import HostFilter
from gridvm.scheduler.pass_context import PassContext
from gridvm.scheduler.snapshot import Affinity, VmDemand
from gridvm.scheduler.table import HostTable, Mask


def _same_host(table: HostTable, vm: VmDemand, ctx: PassContext) -> Mask:
    mask = np.ones(table.size, dtype=np.bool_)
    held = ctx.members.get(vm.deployment)
    if vm.affinity == Affinity.same_host and held:
        mask[:] = False
        mask[list(held)] = True
    return mask


def _different_hosts(table: HostTable, vm: VmDemand, ctx: PassContext) -> Mask:
    mask = np.ones(table.size, dtype=np.bool_)
    held = ctx.members.get(vm.deployment)
    if vm.affinity == Affinity.different_hosts and held:
        mask[list(held)] = False
    return mask


def _wants(affinity: Affinity) -> Callable[[HostTable, VmDemand, PassContext], bool]:
    def applies(table: HostTable, vm: VmDemand, ctx: PassContext) -> bool:
        return vm.affinity == affinity and bool(ctx.members.get(vm.deployment))

    return applies


SAME_HOST = HostFilter(
    "same-host", "not the host of its deployment", _same_host, _wants(Affinity.same_host)
)
DIFFERENT_HOSTS = HostFilter(
    "different-hosts",
    "holding another member of its deployment",
    _different_hosts,
    _wants(Affinity.different_hosts),
)
