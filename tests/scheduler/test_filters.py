"""Each filter over literal host states."""

from __future__ import annotations

import numpy as np

from gridvm.scheduler import Affinity, Reservation
from gridvm.scheduler.filters.affinity import DIFFERENT_HOSTS, SAME_HOST
from gridvm.scheduler.filters.arch import ARCH
from gridvm.scheduler.filters.capacity import CORES, DISK, MEMORY
from gridvm.scheduler.filters.host_state import ENABLED, ONLINE
from gridvm.scheduler.filters.labels import LABELS
from gridvm.scheduler.filters.reservations import RESERVATIONS
from gridvm.scheduler.filters.zone import ZONE
from gridvm.scheduler.pass_context import PassContext
from gridvm.scheduler.table import HostTable
from tests.scheduler.helpers import host, vm

CTX = PassContext(now=0.0)


def allowed(mask: np.ndarray, table: HostTable) -> list[str]:
    return [name for name, ok in zip(table.names, mask, strict=True) if ok]


def test_capacity_counts_cores_memory_and_tracked_disk() -> None:
    table = HostTable(
        [
            host("busy", cores=4, used_cores=3),
            host("small", cores=8, mem=512),
            host("diskless", disk_gb=10, used_disk_gb=8),
            host("untracked"),  # disk_gb 0: the host does not report disk
        ]
    )
    want = vm("v", cpus=2, mem=1024, disk_gb=5)
    assert allowed(CORES(table, want, CTX), table) == ["small", "diskless", "untracked"]
    assert allowed(MEMORY(table, want, CTX), table) == ["busy", "diskless", "untracked"]
    assert allowed(DISK(table, want, CTX), table) == ["busy", "small", "untracked"]


def test_host_state_arch_zone_and_labels() -> None:
    table = HostTable(
        [
            host("off", online=False),
            host("drain", enabled=False),
            host("arm", arch="aarch64"),
            host("dmz", zones=frozenset({"dmz"}), labels={"site": "b"}),
            host("ok", zones=frozenset({"trusted"}), labels={"site": "a", "mem_gb": "128"}),
        ]
    )
    assert allowed(ONLINE(table, vm("v"), CTX), table) == ["drain", "arm", "dmz", "ok"]
    assert allowed(ENABLED(table, vm("v"), CTX), table) == ["off", "arm", "dmz", "ok"]
    assert "arm" not in allowed(ARCH(table, vm("v"), CTX), table)
    assert allowed(ARCH(table, vm("v", arch="aarch64"), CTX), table) == ["arm"]
    # Hosts serve both zones unless told otherwise; "ok" serves only the trusted one.
    only_dmz = vm("v", zones=frozenset({"dmz"}))
    assert allowed(ZONE(table, only_dmz, CTX), table) == ["off", "drain", "arm", "dmz"]
    only_trusted = vm("v", zones=frozenset({"trusted"}))
    assert allowed(ZONE(table, only_trusted, CTX), table) == ["off", "drain", "arm", "ok"]
    assert len(allowed(ZONE(table, vm("v"), CTX), table)) == 5  # no zone asked: any
    picky = vm("v", selector="site in (a,b), mem_gb >= 64")
    assert allowed(LABELS(table, picky, CTX), table) == ["ok"]


def test_affinity_keeps_members_together_or_apart() -> None:
    table = HostTable([host("h0"), host("h1"), host("h2")])
    ctx = PassContext(now=0.0, members={"dep": {1: 2}})
    together = vm("v", deployment="dep", affinity=Affinity.same_host)
    apart = vm("v", deployment="dep", affinity=Affinity.different_hosts)
    assert allowed(SAME_HOST(table, together, ctx), table) == ["h1"]
    assert allowed(DIFFERENT_HOSTS(table, apart, ctx), table) == ["h0", "h2"]
    first = vm("v", deployment="new", affinity=Affinity.same_host)
    assert len(allowed(SAME_HOST(table, first, ctx), table)) == 3  # nobody placed yet


def test_reserved_cores_are_only_for_their_group_during_the_window() -> None:
    table = HostTable([host("h0", cores=8), host("h1", cores=8)])
    r = Reservation("r1", group="cms", cores=8, start=3600, end=7200, hosts=("h0",))
    ctx = PassContext(now=0.0, reservations=(r,), reserved_layout={"r1": {0: 8.0}})
    short = vm("v", cpus=4, group="atlas", walltime_s=1800)  # ends before the window
    long = vm("v", cpus=4, group="atlas", walltime_s=7200)  # would run into it
    own = vm("v", cpus=4, group="cms", walltime_s=7200)
    assert allowed(RESERVATIONS(table, short, ctx), table) == ["h0", "h1"]
    assert allowed(RESERVATIONS(table, long, ctx), table) == ["h1"]
    assert allowed(RESERVATIONS(table, own, ctx), table) == ["h0", "h1"]
