"""The scheduling and lease passes the server runs in a loop.

Both read a snapshot in one transaction and write the result in the same one,
so a restarted server simply carries on from what the database says.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gridvm.common.units import format_duration
from gridvm.scheduler import (
    Affinity,
    FairShareInputs,
    HostSnapshot,
    Policy,
    QuotaBook,
    Reservation,
    RunningVm,
    VmDemand,
    fairshare_factors,
    place,
    priorities,
)
from gridvm.schemas.agent import DesiredState
from gridvm.schemas.hosts import ZONES_BY_TRUST, HostState, Zone
from gridvm.schemas.vms import ACTIVE_STATES, FINAL_STATES, VmState
from gridvm.services.deploy_policy import trusted_run_lapsed
from gridvm.services.fairshare import accrue_usage, tree_of
from gridvm.services.hosts import host_usage, is_online
from gridvm.services.quotas import active_usage, quota_limits
from gridvm.services.vm_runs import close_run
from gridvm.services.volumes import detach_ended, place_volumes, volume_host
from gridvm.store.db import Database
from gridvm.store.models import Host, SchedulerLock, User, Vm, utcnow
from gridvm.store.models import Reservation as ReservationRow

log = logging.getLogger(__name__)


class SchedulingService:
    def __init__(
        self,
        db: Database,
        offline_after_s: float,
        notify_hosts: Callable[..., None] = lambda *hosts: None,
        lost_after_s: float = 600.0,
        policy: Policy | None = None,
    ) -> None:
        self.db = db
        self.policy = policy or Policy()
        self.offline_after_s = offline_after_s
        self.lost_after_s = lost_after_s
        self.notify_hosts = notify_hosts

    def schedule_pass(self) -> int:
        """Place what can be placed; record why the rest waits. Returns the number placed."""
        with self.db.session() as s:
            # Passes never overlap, even between several servers on one database.
            s.get(SchedulerLock, 1, with_for_update=True)
            now = utcnow()
            paths, shares = tree_of(s)
            usage = accrue_usage(s, now, self.policy.half_life_s)
            pending = (
                s.scalars(
                    select(Vm)
                    .where(Vm.state == VmState.pending.value)
                    .order_by(Vm.created_at, Vm.index)
                    .with_for_update(of=Vm)
                )
                .unique()
                .all()
            )
            if not pending:
                return 0
            pending, held = _admit(s, pending)
            pending = self._time_out(pending, now)
            pending = _fail_lapsed(pending, now)
            detach_ended(s)  # of the VMs that timed out or lost their zone
            for vm, reason in held.items():
                vm.pending_reason = reason
                # Waiting for its own deployment's turn is not waiting in the queue.
                vm.queued_at = now
            users = {str(i): str(n) for i, n in s.execute(select(User.id, User.name)).all()}
            demands = [_demand(vm, paths, users) for vm in pending]
            used_by_path = {paths[g]: used for g, used in usage.items() if g in paths}
            factors = fairshare_factors(self.policy.fairshare, shares, used_by_path)
            order = priorities(demands, factors, self.policy, now.timestamp())
            decision = place(
                demands,
                self._hosts(s, now),
                now=now.timestamp(),
                policy=self.policy,
                priorities=order,
                running=_running(s, paths, now),
                reservations=_reservations(s, paths, now),
                quotas=QuotaBook(quota_limits(s, paths), active_usage(s, paths)),
                fairshare=FairShareInputs(shares, used_by_path),
            )
            for vm in pending:
                vm.priority = order.get(vm.id)
                host_id = decision.placements.get(vm.id)
                if host_id is not None:
                    vm.host_id = host_id
                    vm.pinned_host_id = None
                    place_volumes(vm, host_id)
                    vm.state = VmState.scheduled.value
                    vm.pending_reason = None
                else:
                    vm.pending_reason = decision.reasons.get(vm.id)
        if decision.placements:
            log.info("placed %d VMs", len(decision.placements))
            self.notify_hosts(*set(decision.placements.values()))
        return len(decision.placements)

    def _hosts(self, s: Session, now: datetime) -> list[HostSnapshot]:
        usage = host_usage(s)
        return [
            HostSnapshot(
                name=h.id,
                cores=h.cores,
                memory_mb=h.memory_mb,
                used_cores=usage.get(h.id, (0, 0, 0))[0],
                used_memory_mb=usage.get(h.id, (0, 0, 0))[1],
                enabled=h.state == HostState.enabled.value,
                online=is_online(h, now, self.offline_after_s),
                arch=h.arch,
                labels={str(k): str(v) for k, v in h.labels.items()},
                zones=frozenset(h.zones or [z.value for z in Zone]),
                cached_images=frozenset(h.cached_images.get("digests", [])),
            )
            for h in s.scalars(select(Host))
        ]

    @staticmethod
    def _time_out(pending: Sequence[Vm], now: datetime) -> list[Vm]:
        """End the VMs that waited longer than their deployment's queue timeout."""
        waiting = []
        for vm in pending:
            timeout = vm.deployment.queue_timeout_s
            since = vm.queued_at or vm.created_at
            # A stopped single-mode VM starting again keeps its disk: it is never failed.
            restart = vm.pinned_host_id is not None
            if timeout is not None and not restart and (now - since).total_seconds() > timeout:
                vm.state = VmState.failed.value
                vm.ended_at = now
                why = vm.pending_reason or "waiting for the scheduler"
                vm.exit_reason = (
                    f"still waiting after the queue timeout of {format_duration(timeout)}: {why}"
                )
                vm.pending_reason = None
            else:
                waiting.append(vm)
        return waiting

    def lease_pass(self) -> int:
        """Ask every VM whose walltime has run out to power off. Returns how many."""
        with self.db.session() as s:
            now = utcnow()
            expired = (
                s.scalars(
                    select(Vm)
                    .where(
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
                    .with_for_update(of=Vm)
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

    def lost_host_pass(self) -> int:
        """Fail the VMs of hosts silent for longer than ``lost_after_s``; returns how many.

        Their cores and memory are freed and their images no longer count as in use.
        If the host comes back, its agent drops them (they are no longer assigned).
        """
        with self.db.session() as s:
            cutoff = utcnow() - timedelta(seconds=self.lost_after_s)
            lost_hosts = {
                h.id: h
                for h in s.scalars(
                    select(Host).where(Host.last_seen_at.is_not(None), Host.last_seen_at < cutoff)
                )
            }
            if not lost_hosts:
                return 0
            vms = (
                s.scalars(
                    select(Vm)
                    .where(
                        Vm.host_id.in_(lost_hosts),
                        # A stopped single-mode VM holds nothing but its disk there (and a
                        # start of it waits for that host): they wait for the host to return.
                        Vm.state.not_in(
                            [st.value for st in FINAL_STATES]
                            + [VmState.stopped.value, VmState.pending.value]
                        ),
                    )
                    .with_for_update(of=Vm)
                )
                .unique()
                .all()
            )
            now = utcnow()
            for vm in vms:
                host = lost_hosts[vm.host_id or ""]
                silent = format_duration((now - (host.last_seen_at or now)).total_seconds())
                vm.state = VmState.failed.value
                vm.exit_reason = f"host {host.name} has not been heard from for {silent}: VM lost"
                vm.ended_at = now
                vm.pending_reason = None
                close_run(s, vm, now, vm.state)
                log.warning("VM %s lost with host %s", vm.id, host.name)
            detach_ended(s)
            return len(vms)


def _admit(s: Session, pending: Sequence[Vm]) -> tuple[list[Vm], dict[Vm, str]]:
    """Split pending VMs into those that may be placed now and those their deployment's
    ``max_running`` holds back (with the reason to show)."""
    limits = {vm.deployment_id: vm.deployment.max_running for vm in pending}
    limited = [d for d, limit in limits.items() if limit is not None]
    if not limited:
        return list(pending), {}
    rows = s.execute(
        select(Vm.deployment_id, func.count())
        .where(Vm.deployment_id.in_(limited), Vm.state.in_([st.value for st in ACTIVE_STATES]))
        .group_by(Vm.deployment_id)
    ).all()
    running = {str(d): int(n) for d, n in rows}
    admitted: list[Vm] = []
    held: dict[Vm, str] = {}
    for vm in pending:
        limit = limits[vm.deployment_id]
        if limit is None:
            admitted.append(vm)
        elif running.get(vm.deployment_id, 0) < limit:
            running[vm.deployment_id] = running.get(vm.deployment_id, 0) + 1
            admitted.append(vm)
        else:
            held[vm] = f"waiting its turn: {limit} VMs of this deployment may run at once"
    return admitted, held


def _fail_lapsed(pending: Sequence[Vm], now: datetime) -> list[Vm]:
    """Fail the VMs waiting for the trusted zone whose image lost its certification since
    they were asked for (a stopped single-mode VM starting again keeps waiting)."""
    waiting = []
    for vm in pending:
        reason = None if vm.pinned_host_id is not None else trusted_run_lapsed(vm, now)
        if reason is None:
            waiting.append(vm)
            continue
        vm.state = VmState.failed.value
        vm.ended_at = now
        vm.exit_reason = f"{reason} (run it again with --zone dmz, or ask a security officer)"
        vm.pending_reason = None
    return waiting


def _zones(vm: Vm) -> frozenset[str]:
    """The zone the VM was given at request time (older rows: from the image's class)."""
    if vm.zone:
        return frozenset({vm.zone})
    return ZONES_BY_TRUST.get(vm.image.trust, frozenset()) if vm.image else frozenset()


def _demand(vm: Vm, paths: dict[str, str], users: dict[str, str]) -> VmDemand:
    d = vm.deployment
    return VmDemand(
        vm_id=vm.id,
        vcpus=vm.vcpus,
        memory_mb=vm.memory_mb,
        image_digest=vm.image.digest if vm.image else "",
        # A kept disk, or volumes, live on one host: the VM runs there.
        pinned_host=vm.pinned_host_id or volume_host(vm),
        group=paths.get(vm.group_id or "", ""),
        user=users.get(vm.owner_id, ""),
        deployment=vm.deployment_id,
        submitted_at=vm.created_at.timestamp(),
        walltime_s=vm.walltime_s,
        gang=d.gang,
        affinity=Affinity(d.affinity),
        selector=d.selector or "",
        zones=_zones(vm),
    )


def _running(s: Session, paths: dict[str, str], now: datetime) -> list[RunningVm]:
    """VMs holding resources, with when their walltime ends (for backfill and affinity)."""
    rows = s.execute(
        select(
            Vm.host_id, Vm.vcpus, Vm.memory_mb, Vm.expires_at, Vm.walltime_s,
            Vm.group_id, Vm.deployment_id,
        ).where(Vm.state.in_([st.value for st in ACTIVE_STATES]), Vm.host_id.is_not(None))
    ).all()  # fmt: skip
    out = []
    for host_id, vcpus, memory, expires_at, walltime, group_id, deployment in rows:
        ends = expires_at or now + timedelta(seconds=walltime)
        out.append(
            RunningVm(
                host=str(host_id),
                vcpus=int(vcpus),
                memory_mb=int(memory),
                ends_at=ends.timestamp(),
                group=paths.get(group_id or "", ""),
                deployment=str(deployment),
            )
        )
    return out


def _reservations(s: Session, paths: dict[str, str], now: datetime) -> list[Reservation]:
    hosts = {str(n): str(i) for n, i in s.execute(select(Host.name, Host.id)).all()}
    return [
        Reservation(
            id=r.id,
            group=paths.get(r.group_id, ""),
            cores=r.cores,
            start=r.starts_at.timestamp(),
            end=r.ends_at.timestamp(),
            hosts=tuple(hosts[h] for h in r.hosts or [] if h in hosts),
        )
        for r in s.scalars(select(ReservationRow).where(ReservationRow.ends_at > now))
    ]
