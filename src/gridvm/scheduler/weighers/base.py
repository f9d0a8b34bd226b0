"""A weigher: how good each candidate host is for a VM, a number in [0, 1] per host
(higher is better), multiplied by the site's multiplier for it and summed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gridvm.scheduler.snapshot import VmDemand
from gridvm.scheduler.table import Floats, HostTable

# Which hosts to weigh: their indexes, or slice(None) for all of them.
Indexes = npt.NDArray[np.intp]
Hosts = Indexes | slice


def _may_vary(table: HostTable, vm: VmDemand) -> bool:
    return True


@dataclass(frozen=True)
class Weigher:
    name: str
    measure: Callable[[HostTable, VmDemand, Hosts], Floats]
    # False when the measure is the same for every host (it cannot change the choice).
    varies: Callable[[HostTable, VmDemand], bool] = _may_vary
