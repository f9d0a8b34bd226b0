"""A weigher: how good each candidate host is for a VM, a number in [0, 1] per host
(higher is better), multiplied by the site's multiplier for it and summed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gridvm.scheduler.snapshot import VmDemand
from gridvm.scheduler.table import Floats, HostTable

Indexes = npt.NDArray[np.intp]


@dataclass(frozen=True)
class Weigher:
    name: str
    measure: Callable[[HostTable, VmDemand, Indexes], Floats]
