"""Idle fraction of the host's cores as its agent last measured it (1 - load)."""

from __future__ import annotations

import numpy as np

from gridvm.scheduler.snapshot import VmDemand
from gridvm.scheduler.table import Floats, HostTable
from gridvm.scheduler.weighers.base import Hosts, Weigher


def _idle(table: HostTable, vm: VmDemand, hosts: Hosts) -> Floats:
    return np.clip(1.0 - table.load[hosts], 0.0, 1.0)


def _some_load_known(table: HostTable, vm: VmDemand) -> bool:
    return table.load_known


LOAD = Weigher("load", _idle, _some_load_known)
