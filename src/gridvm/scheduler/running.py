"""The running VMs of a pass, read once: as columns for backfill, and as the core-seconds
each group has committed (remaining walltime x cores) for live fair-share ranking.

One loop over what may be a hundred thousand VMs: both come out of it together.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from gridvm.scheduler.backfill import Holdings
from gridvm.scheduler.snapshot import RunningVm


def read_running(
    running: Sequence[RunningVm], host_index: Mapping[str, int], now: float
) -> tuple[Holdings, dict[str, float]]:
    hosts: list[int] = []
    ends: list[float] = []
    cores: list[int] = []
    memory: list[int] = []
    committed: dict[str, float] = {}
    get = host_index.get
    for r in running:
        index = get(r.host)
        if index is not None:
            hosts.append(index)
            ends.append(r.ends_at)
            cores.append(r.vcpus)
            memory.append(r.memory_mb)
        remaining = r.ends_at - now
        if remaining > 0:
            committed[r.group] = committed.get(r.group, 0.0) + remaining * r.vcpus
    held = Holdings(
        np.array(hosts, dtype=np.intp),
        np.array(ends, dtype=np.float64),
        np.array(cores, dtype=np.float64),
        np.array(memory, dtype=np.float64),
    )
    return held, committed
