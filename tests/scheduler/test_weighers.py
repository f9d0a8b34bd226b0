"""Each weigher over literal host states: a number in [0, 1] per host, higher is better."""

from __future__ import annotations

import numpy as np

from gridvm.scheduler.table import HostTable
from gridvm.scheduler.weighers.cache import CACHE_AFFINITY
from gridvm.scheduler.weighers.free_memory import FREE_MEMORY
from gridvm.scheduler.weighers.load import LOAD
from gridvm.scheduler.weighers.spread import SPREAD
from tests.scheduler.helpers import host, vm

TABLE = HostTable(
    [
        host("empty", cores=8, mem=8192),
        host("half", cores=8, mem=8192, used_cores=4, used_memory_mb=4096, load=0.5),
        host("cached", cores=8, mem=8192, cached_images=frozenset({"sha256:a"}), load=1.5),
    ]
)
ALL = np.arange(3)


def test_spread_is_the_free_core_fraction_left() -> None:
    assert SPREAD.measure(TABLE, vm("v", cpus=2), ALL).tolist() == [0.75, 0.25, 0.75]


def test_free_memory_fraction_left() -> None:
    assert FREE_MEMORY.measure(TABLE, vm("v", mem=2048), ALL).tolist() == [0.75, 0.25, 0.75]


def test_cache_affinity_marks_hosts_with_the_image() -> None:
    assert CACHE_AFFINITY.measure(TABLE, vm("v"), ALL).tolist() == [0.0, 0.0, 1.0]
    assert CACHE_AFFINITY.measure(TABLE, vm("v", image="sha256:b"), ALL).tolist() == [0, 0, 0]


def test_load_is_the_idle_fraction_clipped() -> None:
    assert LOAD.measure(TABLE, vm("v"), ALL).tolist() == [1.0, 0.5, 0.0]
