"""The scheduling and lease passes the server runs in a loop.

Both read a snapshot in one transaction and write the result in the same one,
so a restarted server simply carries on from what the database says.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import select

from gridvm.scheduler import HostSnapshot, VmDemand, place
from gridvm.schemas.agent import DesiredState
from gridvm.schemas.hosts import HostState
from gridvm.schemas.vms import VmState
from gridvm.services.hosts import host_usage, is_online
from gridvm.store.db import Database
from gridvm.store.models import Host, Vm, utcnow

log = logging.getLogger(__name__)


class SchedulingService:
    def __init__(
        self,
        db: Database,
        offline_after_s: float,
        notify_hosts: Callable[..., None] = lambda *hosts: None,
    ) -> None:
        self.db = db
        self.offline_after_s = offline_after_s
        self.notify_hosts = notify_hosts

    def schedule_pass(self) -> int:
        """Place what can be placed; record why the rest waits. Returns the number placed."""
        with self.db.session() as s:
            pending = (
                s.scalars(
                    select(Vm)
                    .where(Vm.state == VmState.pending.value)
                    .order_by(Vm.created_at, Vm.index)
                )
                .unique()
                .all()
            )
            if not pending:
                return 0
            hosts = s.scalars(select(Host)).all()
            now = utcnow()
            usage = host_usage(s)
            snapshots = [
                HostSnapshot(
                    name=h.id,
                    cores=h.cores,
                    memory_mb=h.memory_mb,
                    used_cores=usage.get(h.id, (0, 0, 0))[0],
                    used_memory_mb=usage.get(h.id, (0, 0, 0))[1],
                    enabled=h.state == HostState.enabled.value,
                    online=is_online(h, now, self.offline_after_s),
                    arch=h.arch,
                    cached_images=frozenset(h.cached_images.get("digests", [])),
                )
                for h in hosts
            ]
            demands = [
                VmDemand(
                    vm_id=vm.id,
                    vcpus=vm.vcpus,
                    memory_mb=vm.memory_mb,
                    image_digest=vm.image.digest,
                    pinned_host=vm.pinned_host_id,
                )
                for vm in pending
            ]
            decision = place(demands, snapshots)
            for vm in pending:
                host_id = decision.placements.get(vm.id)
                if host_id is not None:
                    vm.host_id = host_id
                    vm.pinned_host_id = None
                    vm.state = VmState.scheduled.value
                    vm.pending_reason = None
                else:
                    vm.pending_reason = decision.reasons.get(vm.id)
        if decision.placements:
            log.info("placed %d VMs", len(decision.placements))
            self.notify_hosts(*set(decision.placements.values()))
        return len(decision.placements)

    def lease_pass(self) -> int:
        """Ask every VM whose walltime has run out to power off. Returns how many."""
        with self.db.session() as s:
            now = utcnow()
            expired = (
                s.scalars(
                    select(Vm).where(
                        Vm.expires_at.is_not(None),
                        Vm.expires_at < now,
                        Vm.desired.in_([DesiredState.running.value, DesiredState.suspended.value]),
                        Vm.state.in_(
                            [
                                VmState.booting.value,
                                VmState.running.value,
                                VmState.suspended.value,
                            ]
                        ),
                    )
                )
                .unique()
                .all()
            )
            hosts = set()
            for vm in expired:
                vm.desired = DesiredState.stopped.value
                vm.stop_reason = "expired"
                vm.state = VmState.stopping.value
                hosts.add(vm.host_id)
                log.info("VM %s reached its walltime", vm.id)
        self.notify_hosts(*hosts)
        return len(expired)
