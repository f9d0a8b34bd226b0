"""One scheduling pass: waiting VMs in priority order, each through the filters, the
best of the remaining hosts by the weighers (at random among the top few), with
quotas, gangs, affinity, reservations and EASY backfill. Pure: pictures in, decision out.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence

import numpy as np

from gridvm.scheduler.backfill import Holdings, Shadow, find_shadow
from gridvm.scheduler.filters import DEFAULT_FILTERS, STATIC_FILTERS
from gridvm.scheduler.pass_context import PassContext
from gridvm.scheduler.policy import Policy
from gridvm.scheduler.quotas import QuotaBook
from gridvm.scheduler.ranking import FairShareInputs, ranking_for
from gridvm.scheduler.running import read_running
from gridvm.scheduler.snapshot import (
    Affinity,
    Decision,
    HostSnapshot,
    Reservation,
    RunningVm,
    VmDemand,
)
from gridvm.scheduler.table import HostTable, Mask
from gridvm.scheduler.weighers import WEIGHERS
from gridvm.scheduler.weighers.base import Indexes

_STATIC = tuple(f for f in DEFAULT_FILTERS if f.name in STATIC_FILTERS)
_DYNAMIC = tuple(f for f in DEFAULT_FILTERS if f.name not in STATIC_FILTERS)


def place(
    pending: Sequence[VmDemand],
    hosts: Sequence[HostSnapshot],
    *,
    now: float = 0.0,
    policy: Policy | None = None,
    priorities: Mapping[str, float] | None = None,
    running: Sequence[RunningVm] = (),
    reservations: Sequence[Reservation] = (),
    quotas: QuotaBook | None = None,
    fairshare: FairShareInputs | None = None,
) -> Decision:
    """Place what can be placed now. ``priorities`` (VM id -> number, higher first; see
    gridvm.scheduler.priority) orders the VMs; without it they go in submission order.
    With ``fairshare`` (and classic fair share), groups are re-ranked as the pass
    commits cores to them (see gridvm.scheduler.ranking)."""
    chosen = policy or Policy()
    return _Pass(
        pending, hosts, now, chosen, priorities, running, reservations, quotas, fairshare
    ).run()


class _Pass:
    def __init__(
        self,
        pending: Sequence[VmDemand],
        hosts: Sequence[HostSnapshot],
        now: float,
        policy: Policy,
        priorities: Mapping[str, float] | None,
        running: Sequence[RunningVm],
        reservations: Sequence[Reservation],
        quotas: QuotaBook | None,
        fairshare: FairShareInputs | None,
    ) -> None:
        self.table = HostTable(hosts)
        self.fairshare = fairshare
        self.considered: list[VmDemand] = []
        self.policy = policy
        self.now = now
        self.quotas = quotas
        # Tie-breaking among equally good hosts, not security: a seeded PRNG is right.
        self.rng = random.Random(policy.seed)  # noqa: S311
        prio = priorities or {}
        self.priorities = {vm.vm_id: prio.get(vm.vm_id, 0.0) for vm in pending}
        # Ties go by submission time, then by the order given (stable sort).
        self.order = sorted(pending, key=lambda vm: (-self.priorities[vm.vm_id], vm.submitted_at))
        self.ctx = PassContext(now=now, reservations=tuple(reservations))
        self.running = running
        self._running_read: tuple[Holdings, dict[str, float]] | None = None  # when needed
        self.placed: list[tuple[int, VmDemand]] = []
        if any(vm.affinity != Affinity.none for vm in pending):
            for r in running:
                index = self.table.index.get(r.host)
                if index is not None and r.deployment:
                    members = self.ctx.members.setdefault(r.deployment, {})
                    members[index] = members.get(index, 0) + 1
        if reservations:
            self._lay_out_reservations(running)
        # Shapes that found no host this pass: room only shrinks as a pass goes on, so a
        # VM asking as much or more of the same hosts cannot fit either (see _known_to_fail).
        self._failed: dict[Hashable, list[tuple[int, int, int, int, str]]] = {}
        self._static_masks: dict[Hashable, Mask] = {}
        self.placements: dict[str, str] = {}
        self.reasons: dict[str, str] = {}
        self.shadow: Shadow | None = None
        self.blocked_by: VmDemand | None = None  # the first waiting VM (no backfill)
        self.multipliers = [(w, policy.multiplier(w.name)) for w in WEIGHERS]

    # --- the pass ---------------------------------------------------------------------
    def run(self) -> Decision:
        committed = self._read_running()[1] if self.fairshare is not None else {}
        ranking = ranking_for(self.order, self.fairshare, committed, self.policy, self.now)
        for unit in ranking:
            self.considered += unit
            if self._place_unit(unit):
                ranking.placed(unit)
        self._say_who_is_ahead()
        return Decision(self.placements, self.reasons, dict(self.priorities))

    def _say_who_is_ahead(self) -> None:
        """A VM waiting for room also learns how many waiting VMs go before it."""
        ahead = 0
        for vm in self.considered:
            reason = self.reasons.get(vm.vm_id)
            if reason is None:
                continue
            if ahead and reason.startswith("no host can take"):
                self.reasons[vm.vm_id] = (
                    f"{reason}; {ahead} waiting VM{'s go' if ahead != 1 else ' goes'} first"
                    " (higher priority or earlier)"
                )
            ahead += 1

    def _place_unit(self, unit: list[VmDemand]) -> bool:
        """Place the whole unit or none of it; says whether it was placed."""
        if self.blocked_by is not None:
            first = self.blocked_by
            for vm in unit:
                self.reasons[vm.vm_id] = (
                    f"waiting behind {first.vm_id}, which has a higher priority"
                    " (the site runs VMs strictly in priority order)"
                )
            return False
        if self.quotas is not None:
            refusal = self.quotas.refusal(unit)
            if refusal is not None:
                for vm in unit:
                    self.reasons[vm.vm_id] = refusal
                return False
        taken: list[tuple[VmDemand, int]] = []
        for vm in unit:
            known = self._known_to_fail(vm)
            host = None if known is not None else self._choose(vm)
            if host is None:
                why = known if known is not None else self._why_not(vm)
                if known is None and len(unit) == 1:
                    self._remember_failure(vm, why)
                for done, index in taken:
                    self._give_back(done, index)
                for member in unit:
                    self.reasons[member.vm_id] = (
                        why
                        if len(unit) == 1
                        else f"its gang of {len(unit)} cannot start together: {why}"
                    )
                if len(unit) == 1:
                    self._note_blocked(vm)
                return False
            self._take(vm, host)
            taken.append((vm, host))
        for vm, host in taken:
            self.placements[vm.vm_id] = self.table.names[host]
        if self.quotas is not None:
            self.quotas.add(unit)
        return True

    # --- shapes known not to fit ------------------------------------------------------
    def _failure_key(self, vm: VmDemand) -> Hashable | None:
        """What decides a VM's fate besides its size, or None when it is not comparable
        (affinity depends on where its deployment's members are)."""
        if vm.affinity != Affinity.none:
            return None
        return (vm.pinned_host, vm.arch, vm.zones, vm.selector)

    def _known_to_fail(self, vm: VmDemand) -> str | None:
        """The reason an earlier VM of this pass failed, if it asked no more than ``vm``
        of the same hosts (and, with reservations or backfill, ran no longer)."""
        key = self._failure_key(vm)
        if key is None:
            return None
        for cores, memory, disk, walltime, reason in self._failed.get(key, ()):
            if (
                vm.vcpus >= cores
                and vm.memory_mb >= memory
                and vm.disk_gb >= disk
                and vm.walltime_s >= walltime
            ):
                return reason
        return None

    def _remember_failure(self, vm: VmDemand, reason: str) -> None:
        key = self._failure_key(vm)
        if key is None or (self.ctx.reservations and vm.group):
            return  # with reservations, a VM's group changes what it may use
        failed = self._failed.setdefault(key, [])
        if len(failed) < 32:
            failed.append((vm.vcpus, vm.memory_mb, vm.disk_gb, vm.walltime_s, reason))

    # --- choosing a host ---------------------------------------------------------------
    def _static_mask(self, vm: VmDemand) -> Mask:
        key = (vm.pinned_host, vm.arch, vm.zones, vm.selector)
        mask = self._static_masks.get(key)
        if mask is None:
            mask = np.ones(self.table.size, dtype=np.bool_)
            for f in _STATIC:
                mask &= f(self.table, vm, self.ctx)
            self._static_masks[key] = mask
        return mask

    def _candidates(self, vm: VmDemand) -> Mask:
        mask = self._static_mask(vm) & (self.table.free_cores >= vm.vcpus)
        mask &= self.table.free_memory_mb >= vm.memory_mb
        for f in _DYNAMIC:
            if f.name not in ("cores", "memory") and f.applies(self.table, vm, self.ctx):
                mask &= f(self.table, vm, self.ctx)
        if self.shadow is not None and mask[self.shadow.host]:
            mask[self.shadow.host] = self.shadow.allows(vm, self.now)
        return mask

    def _choose(self, vm: VmDemand) -> int | None:
        mask = self._candidates(vm)
        count = int(np.count_nonzero(mask))
        if count == 0:
            return None
        # Most hosts are candidates early in a pass: weighing them all and masking the
        # rest out is cheaper than gathering the candidates first.
        hosts: Indexes | slice = slice(None) if count * 4 > mask.size else np.flatnonzero(mask)
        weights = np.zeros(mask.size if isinstance(hosts, slice) else hosts.size)
        for weigher, multiplier in self.multipliers:
            if multiplier and weigher.varies(self.table, vm):
                weights += multiplier * weigher.measure(self.table, vm, hosts)
        if isinstance(hosts, slice):
            weights[~mask] = -np.inf
            index = np.arange(mask.size)
        else:
            index = hosts
        k = min(max(1, self.policy.top_k), count)
        if k == 1:
            return int(index[int(np.argmax(weights))])
        top = np.argpartition(-weights, k - 1)[:k]
        best = weights[top].max()
        close = [int(index[i]) for i in top if weights[i] >= best - self.policy.tie_tolerance]
        return self.rng.choice(sorted(close))

    def _take(self, vm: VmDemand, host: int) -> None:
        self.table.take(host, vm.vcpus, vm.memory_mb, vm.disk_gb, vm.image_digest)
        self.placed.append((host, vm))
        if vm.deployment:
            members = self.ctx.members.setdefault(vm.deployment, {})
            members[host] = members.get(host, 0) + 1
        self._use_reservation(vm, host, +1)
        if self.shadow is not None and host == self.shadow.host:
            self.shadow.charge(vm, self.now)

    def _give_back(self, vm: VmDemand, host: int) -> None:
        self.table.give_back(host, vm.vcpus, vm.memory_mb, vm.disk_gb)
        self.placed.remove((host, vm))
        if vm.deployment:
            members = self.ctx.members[vm.deployment]
            members[host] -= 1
            if not members[host]:
                del members[host]
        self._use_reservation(vm, host, -1)

    # --- when a VM must wait -------------------------------------------------------------
    def _note_blocked(self, vm: VmDemand) -> None:
        """The first VM that must wait for room reserves its place (backfill), or, with
        backfill off, holds back everything behind it."""
        if self.shadow is not None or self.blocked_by is not None:
            return
        static = self._static_mask(vm)
        if not static.any():
            return  # no host could ever take it: it holds nobody back
        if not self.policy.backfill:
            self.blocked_by = vm
            return
        if vm.affinity != Affinity.none or self.ctx.reservations:
            # Where it may go then depends on more than room as VMs end: no shadow (a host
            # kept free for it could be one it may never use).
            return
        self.shadow = find_shadow(self.table, vm, static, self._holdings(), self.now)

    def _holdings(self) -> Holdings:
        """What holds resources now: the running VMs and those placed so far this pass."""
        held = self._read_running()[0]
        placed = self.placed
        return Holdings(
            np.r_[held.host, np.array([h for h, _ in placed], dtype=np.intp)],
            np.r_[held.ends_at, [self.now + v.walltime_s for _, v in placed]],
            np.r_[held.vcpus, [float(v.vcpus) for _, v in placed]],
            np.r_[held.memory_mb, [float(v.memory_mb) for _, v in placed]],
        )

    def _read_running(self) -> tuple[Holdings, dict[str, float]]:
        if self._running_read is None:
            self._running_read = read_running(self.running, self.table.index, self.now)
        return self._running_read

    def _why_not(self, vm: VmDemand) -> str:
        want = f"{vm.vcpus} vCPU{'s' if vm.vcpus != 1 else ''} and {vm.memory_mb} MiB"
        if self.table.size == 0:
            return f"waiting for a host: no host is registered (needs {want})"
        causes: Counter[str] = Counter()
        remaining = np.ones(self.table.size, dtype=np.bool_)
        for f in DEFAULT_FILTERS:
            if not f.applies(self.table, vm, self.ctx):
                continue
            ok = f(self.table, vm, self.ctx)
            causes[f.reason] += int(np.count_nonzero(remaining & ~ok))
            remaining &= ok
        if self.shadow is not None and remaining[self.shadow.host]:
            causes["kept free for a higher-priority VM (backfill)"] += 1
        parts = [
            f"{n} host{' is' if n == 1 else 's are'} {cause}"
            for cause, n in causes.most_common()
            if n
        ]
        return f"no host can take {want} now: " + ", ".join(parts)

    # --- reservations -----------------------------------------------------------------------
    def _lay_out_reservations(self, running: Sequence[RunningVm]) -> None:
        """Put each reservation's cores on hosts (named ones, or all in name order), and
        count what its group already runs there."""
        by_name = sorted(range(self.table.size), key=lambda i: self.table.names[i])
        laid: list[tuple[Reservation, dict[int, float]]] = []
        for r in sorted(self.ctx.reservations, key=lambda r: (r.start, r.id)):
            hosts = (
                [self.table.index[h] for h in r.hosts if h in self.table.index]
                if r.hosts
                else by_name
            )
            # Cores an overlapping reservation laid out already are not laid out twice.
            taken: dict[int, float] = {}
            for other, other_layout in laid:
                if other.start < r.end and r.start < other.end:
                    for host, cores in other_layout.items():
                        taken[host] = taken.get(host, 0.0) + cores
            layout: dict[int, float] = {}
            left = float(r.cores)
            for host in hosts:
                if left <= 0:
                    break
                cores = min(left, float(self.table.cores[host]) - taken.get(host, 0.0))
                if cores > 0:
                    layout[host] = cores
                    left -= cores
            laid.append((r, layout))
            self.ctx.reserved_layout[r.id] = layout
            use: dict[int, float] = {}
            for vm in running:
                index = self.table.index.get(vm.host)
                if vm.group == r.group and index in layout and r.start <= self.now < r.end:
                    use[index] = min(layout[index], use.get(index, 0.0) + vm.vcpus)
            self.ctx.reservation_use[r.id] = use

    def _use_reservation(self, vm: VmDemand, host: int, sign: int) -> None:
        for r in self.ctx.reservations:
            layout = self.ctx.reserved_layout.get(r.id, {})
            if r.group != vm.group or host not in layout:
                continue
            if r.end <= self.now or r.start >= self.now + vm.walltime_s:
                continue
            use = self.ctx.reservation_use.setdefault(r.id, {})
            use[host] = min(layout[host], max(0.0, use.get(host, 0.0) + sign * vm.vcpus))
