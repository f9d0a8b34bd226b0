"""Idle fraction of the host's cores as its agent last measured it (1 - load)."""

from __future__ import annotations

import numpy as np

from gridvm.scheduler.snapshot import VmDemand
from gridvm.scheduler.table import Floats, HostTable
from gridvm.scheduler.weighers.base import Indexes, Weigher


def _idle(table: HostTable, vm: VmDemand, hosts: Indexes) -> Floats:
    return np.clip(1.0 - table.load[hosts], 0.0, 1.0)


LOAD = Weigher("load", _idle)
