"""The order in which a pass considers waiting VMs.

Static: by the priorities the caller computed (fair share, age, size), highest first.

Live (classic fair share, when the pass is given the groups' shares and usage): a
group's fair-share factor counts what it has *committed* as well as what it used:
the remaining walltime of its running VMs, and of every VM the pass starts for it.
Each placement lowers its group's factor at once, so the cores freed in one pass
are shared out by the shares instead of all going to the group on top, and the
group that ran alone does not starve for as long once others have cores again.
The order between groups only depends on usage divided by share, so a group's
rank is refreshed when its own usage changes or the total has grown by a percent.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from gridvm.scheduler.fairshare import complete_tree, normalised_shares, parent_of
from gridvm.scheduler.policy import FairShareAlgorithm, Policy
from gridvm.scheduler.snapshot import VmDemand

Unit = list[VmDemand]
REFRESH = 1.01  # re-rank a group when the total usage grew by more than this factor


@dataclass(frozen=True)
class FairShareInputs:
    shares: Mapping[str, float]  # group path -> shares
    usage: Mapping[str, float]  # group path -> decayed core-seconds of its own VMs


def units_of(order: Sequence[VmDemand]) -> list[Unit]:
    """VMs one by one in order, except that a gang's members go together, where its first
    member comes."""
    units: list[Unit] = []
    gangs: dict[str, Unit] = {}
    for vm in order:
        if vm.gang and vm.deployment:
            if vm.deployment not in gangs:
                gangs[vm.deployment] = []
                units.append(gangs[vm.deployment])
            gangs[vm.deployment].append(vm)
        else:
            units.append([vm])
    return units


class StaticRanking:
    def __init__(self, order: Sequence[VmDemand]) -> None:
        self._units = units_of(order)

    def __iter__(self) -> Iterator[Unit]:
        return iter(self._units)

    def placed(self, unit: Unit) -> None:
        """Nothing changes: the order was fixed at the start."""


class LiveRanking:
    def __init__(
        self,
        order: Sequence[VmDemand],
        inputs: FairShareInputs,
        committed: Mapping[str, float],
        policy: Policy,
        now: float,
    ) -> None:
        self.policy = policy
        self.now = now
        tree = complete_tree(inputs.shares)
        for vm in order:  # groups the caller gave no share are taken as 1 share
            for path in _self_and_parents(vm.group):
                tree.setdefault(path, 1.0)
        self.norm = normalised_shares(tree)
        self.used: dict[str, float] = dict.fromkeys(tree, 0.0)
        for group, used in inputs.usage.items():
            self._charge(group, max(0.0, used))
        for group, core_seconds in committed.items():
            self._charge(group, core_seconds)
        self.total = sum(used for path, used in self.used.items() if "/" not in path)
        self.largest = max((vm.vcpus for vm in order), default=1)
        self.queues: dict[str, deque[Unit]] = {}
        for unit in units_of(order):
            self.queues.setdefault(unit[0].group, deque()).append(unit)
        self.heap: list[tuple[float, int, str, float]] = []
        self._charged = False
        self.seq = itertools.count()
        for group in self.queues:
            self._push(group)

    # --- usage and factors ---------------------------------------------------------------
    def _charge(self, group: str, core_seconds: float) -> None:
        for path in _self_and_parents(group):
            if path in self.used:
                self.used[path] += core_seconds

    def factor(self, group: str) -> float:
        if group not in self.norm:
            return 0.5  # no group: as if at its share (as gridvm.scheduler.priority does)
        share = self.norm[group]
        if share <= 0:
            return 0.0
        usage = self.used.get(group, 0.0) / self.total if self.total > 0 else 0.0
        return math.pow(2.0, -usage / share)

    def _priority(self, vm: VmDemand, factor: float) -> float:
        p = self.policy
        age = min(max(0.0, self.now - vm.submitted_at) / p.max_age_s, 1.0)
        return (
            p.weight_fairshare * factor
            + p.weight_age * age
            + p.weight_size * (vm.vcpus / self.largest)
        )

    def _push(self, group: str) -> None:
        queue = self.queues[group]
        if queue:
            priority = self._priority(queue[0][0], self.factor(group))
            heapq.heappush(self.heap, (-priority, next(self.seq), group, self.total))

    # --- the order ----------------------------------------------------------------------
    def __iter__(self) -> Iterator[Unit]:
        """The group on top gives units until its next one ranks below the best other
        group (checked after each unit: a placement lowers its factor)."""
        while self.heap:
            _, _, group, total = heapq.heappop(self.heap)
            if self.total > total * REFRESH:
                self._push(group)  # ranked against a smaller total: rank it again
                continue
            queue = self.queues[group]
            factor = self.factor(group)
            while queue:
                yield queue.popleft()
                if self._charged:
                    self._charged = False
                    factor = self.factor(group)
                if not queue or not self.heap:
                    continue
                if self._priority(queue[0][0], factor) < self._best_other():
                    break
            self._push(group)

    def _best_other(self) -> float:
        """The priority on top of the heap, re-ranking entries made against an older total."""
        while self.total > self.heap[0][3] * REFRESH:
            _, _, group, _ = heapq.heappop(self.heap)
            self._push(group)
        return -self.heap[0][0]

    def placed(self, unit: Unit) -> None:
        """Charge what ``unit`` commits to its group: its VMs' walltimes. (The group's
        next unit is ranked when the iteration resumes, with the new factor.)"""
        committed = sum(vm.vcpus * vm.walltime_s for vm in unit)
        self._charge(unit[0].group, committed)
        if unit[0].group:
            self.total += committed
        self._charged = True


def _self_and_parents(path: str) -> list[str]:
    out = []
    while path:
        out.append(path)
        path = parent_of(path)
    return out


def ranking_for(
    order: Sequence[VmDemand],
    inputs: FairShareInputs | None,
    committed: Mapping[str, float],
    policy: Policy,
    now: float,
) -> StaticRanking | LiveRanking:
    """``committed``: group path -> core-seconds its running VMs have yet to use."""
    if inputs is None or policy.fairshare != FairShareAlgorithm.classic:
        return StaticRanking(order)
    return LiveRanking(order, inputs, committed, policy, now)
