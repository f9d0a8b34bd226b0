"""A filter: which hosts could take a VM, as a mask over the host table, and the phrase
that says why the others cannot ("3 hosts are short of free memory")."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gridvm.scheduler.pass_context import PassContext
from gridvm.scheduler.snapshot import VmDemand
from gridvm.scheduler.table import HostTable, Mask


def _always(table: HostTable, vm: VmDemand, ctx: PassContext) -> bool:
    return True


@dataclass(frozen=True)
class HostFilter:
    name: str
    reason: str  # completes "N hosts are ..."
    test: Callable[[HostTable, VmDemand, PassContext], Mask]
    # Whether the filter can turn down any host for this VM (if not, it is skipped).
    applies: Callable[[HostTable, VmDemand, PassContext], bool] = _always

    def __call__(self, table: HostTable, vm: VmDemand, ctx: PassContext) -> Mask:
        return self.test(table, vm, ctx)
