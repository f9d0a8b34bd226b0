"""A discrete-event simulator of a cluster of *simulated hosts*, driving the real scheduler.

Only for control-plane scale benchmarks (B4a, B4b, B5): no VM runs anywhere. A simulated
host is a pair of counters (cores, memory) and an image cache; a simulated VM holds
them from its placement until its simulated duration (never longer than its walltime)
is over. Time is simulated (nothing sleeps); the only real time measured is the wall
clock spent in the scheduler's own functions during each pass.

What a pass does, as the server's scheduling loop would:

1. bring every group's decayed usage (core-seconds, halving every
   ``policy.half_life_s``) up to the current simulated time;
2. build a :class:`HostSnapshot` per simulated host (used cores and memory, cached
   images, load) and a :class:`RunningVm` per running VM (for backfill);
3. *timed*: ``fairshare_factors`` over the groups' shares and decayed usage,
   ``priorities`` of the waiting VMs, and ``place`` with all of them;
4. start the placed VMs (after checking that the scheduler did not overcommit a host).

When passes happen: with ``pass_interval_s == 0``, at every simulated time at which
something changed (a VM ended or arrived); otherwise on the ticks of that interval
(multiples of it), at the first tick at or after a change. A pass when nothing changed
since the last one could place nothing new, so it is skipped.

Decayed usage is integrated exactly: between two changes a group holds ``c`` cores, so
its usage goes from ``U`` to ``decay(U, dt, h) + c * h / ln 2 * (1 - 2^(-dt/h))``.
"""

from __future__ import annotations

import cProfile
import heapq
import math
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from gridvm.scheduler import (
    Decision,
    FairShareInputs,
    HostSnapshot,
    Policy,
    RunningVm,
    VmDemand,
    decay,
    fairshare_factors,
    place,
    priorities,
)

LN2 = math.log(2.0)

# Event kinds, in the order they are handled when they fall at the same simulated time:
# resources are freed and new VMs queued before the pass that may use them, and a sample
# sees the result of that pass.
_END, _ARRIVAL, _PASS, _SAMPLE = 0, 1, 2, 3


class SimulationError(RuntimeError):
    """The scheduler's decision cannot be carried out (it overcommitted a host, placed
    an unknown VM or used an unknown host)."""


@dataclass(frozen=True)
class SimulatedVm:
    vm_id: str
    group: str
    vcpus: int
    memory_mb: int
    image: str
    duration_s: float  # how long it would run; cut at walltime_s
    walltime_s: int = 3600
    submit_at: float = 0.0  # simulated time it joins the queue (may be before 0)
    user: str = ""

    def __post_init__(self) -> None:
        if self.duration_s <= 0 or self.walltime_s <= 0:
            raise ValueError(f"{self.vm_id}: duration and walltime must be positive")

    @property
    def run_s(self) -> float:
        return min(self.duration_s, float(self.walltime_s))

    def demand(self) -> VmDemand:
        return VmDemand(
            vm_id=self.vm_id,
            vcpus=self.vcpus,
            memory_mb=self.memory_mb,
            image_digest=self.image,
            group=self.group,
            user=self.user,
            submitted_at=self.submit_at,
            walltime_s=self.walltime_s,
        )


class SimulatedHost:
    """A simulated host: capacity, what is in use, and an LRU image cache."""

    def __init__(
        self,
        name: str,
        cores: int,
        memory_mb: int,
        cached_images: Iterable[str] = (),
        cache_limit: int | None = None,
    ) -> None:
        self.name = name
        self.cores = cores
        self.memory_mb = memory_mb
        self.used_cores = 0
        self.used_memory_mb = 0
        self.cache_limit = cache_limit
        self.cache: OrderedDict[str, None] = OrderedDict((i, None) for i in cached_images)
        self.images_in_use: Counter[str] = Counter()
        self._snapshot: HostSnapshot | None = None

    def fits(self, vm: SimulatedVm) -> bool:
        return (
            self.used_cores + vm.vcpus <= self.cores
            and self.used_memory_mb + vm.memory_mb <= self.memory_mb
        )

    def take(self, vm: SimulatedVm) -> None:
        self.used_cores += vm.vcpus
        self.used_memory_mb += vm.memory_mb
        self.images_in_use[vm.image] += 1
        self.cache[vm.image] = None
        self.cache.move_to_end(vm.image)
        self._evict()
        self._snapshot = None

    def give_back(self, vm: SimulatedVm) -> None:
        self.used_cores -= vm.vcpus
        self.used_memory_mb -= vm.memory_mb
        self.images_in_use[vm.image] -= 1
        if not self.images_in_use[vm.image]:
            del self.images_in_use[vm.image]
        self._evict()
        self._snapshot = None

    def _evict(self) -> None:
        """Drop least-recently-used images no VM uses while over the limit."""
        if self.cache_limit is None:
            return
        for image in list(self.cache):
            if len(self.cache) <= self.cache_limit:
                return
            if image not in self.images_in_use:
                del self.cache[image]

    def snapshot(self) -> HostSnapshot:
        if self._snapshot is None:
            self._snapshot = HostSnapshot(
                name=self.name,
                cores=self.cores,
                memory_mb=self.memory_mb,
                used_cores=self.used_cores,
                used_memory_mb=self.used_memory_mb,
                cached_images=frozenset(self.cache),
                load=self.used_cores / self.cores if self.cores else 0.0,
            )
        return self._snapshot


@dataclass
class PassRecord:
    at: float  # simulated time
    pending: int  # VMs given to the scheduler
    placed: int
    seconds: float  # wall clock inside fairshare_factors + priorities + place
    running: int  # VMs running when the pass began


@dataclass
class Run:
    """Where and when one VM ran."""

    host: str
    started_at: float
    ends_at: float  # when it stops (end of its duration, or of its walltime)
    record: RunningVm


@dataclass
class SimulatedCluster:
    hosts: list[SimulatedHost]
    policy: Policy = field(default_factory=Policy)
    shares: Mapping[str, float] = field(default_factory=dict)  # group path -> share
    pass_interval_s: float = 0.0
    # Control-plane latencies: from placement to the VM's clock starting (the agent
    # picks it up and boots it), and from its end to its resources being free again
    # (the agent reports it). Resources are held throughout.
    start_delay_s: float = 0.0
    release_delay_s: float = 0.0
    # Called after each pass with the pass's record and the decision.
    on_pass: Callable[[SimulatedCluster, PassRecord, Decision], None] | None = None
    # If set, profiles the timed part of every pass (and only that).
    profile: cProfile.Profile | None = None

    def __post_init__(self) -> None:
        self.now = 0.0
        self.by_name = {h.name: h for h in self.hosts}
        if len(self.by_name) != len(self.hosts):
            raise ValueError("simulated host names must be unique")
        self.pending: dict[str, tuple[SimulatedVm, VmDemand]] = {}
        self.running: dict[str, tuple[SimulatedVm, Run]] = {}
        self.finished: dict[str, Run] = {}
        self.passes: list[PassRecord] = []
        self.running_cores: Counter[str] = Counter()
        self._usage: dict[str, float] = {}
        self._core_seconds: dict[str, float] = {}  # undecayed, since the simulation began
        self._usage_at: dict[str, float] = {}
        self._events: list[tuple[float, int, int, object]] = []
        self._seq = 0
        self._not_samples = 0  # events in the heap other than samples
        self._pass_due: float | None = None
        self._last_pass_at: float | None = None
        self._sampling: tuple[float, Callable[[SimulatedCluster], None]] | None = None

    # --- building the scenario -------------------------------------------------------
    def submit(self, vms: Iterable[SimulatedVm]) -> None:
        """Queue VMs: now if their submit time has come, else when it comes."""
        for vm in vms:
            if vm.submit_at <= self.now:
                self._enqueue(vm)
            else:
                self._push(vm.submit_at, _ARRIVAL, vm)

    def start(self, vm: SimulatedVm, host: str, elapsed_s: float = 0.0) -> None:
        """Start ``vm`` on ``host`` now without asking the scheduler; with ``elapsed_s``,
        it has been running for that long already (a VM running when the simulation
        begins)."""
        h = self.by_name.get(host)
        if h is None:
            raise SimulationError(f"{vm.vm_id} started on unknown host {host}")
        if not h.fits(vm):
            raise SimulationError(f"{vm.vm_id} does not fit on {host}")
        if not 0 <= elapsed_s < vm.run_s:
            raise ValueError(f"{vm.vm_id}: elapsed_s must be in [0, {vm.run_s})")
        self._settle(vm.group)
        h.take(vm)
        self.running_cores[vm.group] += vm.vcpus
        begins = self.now - elapsed_s if elapsed_s else self.now + self.start_delay_s
        ends_at = begins + vm.run_s
        record = RunningVm(
            host=host,
            vcpus=vm.vcpus,
            memory_mb=vm.memory_mb,
            ends_at=begins + vm.walltime_s,
            group=vm.group,
        )
        self.running[vm.vm_id] = (vm, Run(host, begins, ends_at, record))
        self._push(ends_at + self.release_delay_s, _END, vm.vm_id)

    def set_usage(self, group: str, core_seconds: float) -> None:
        """The group's decayed usage now (its history before the simulation)."""
        self._settle(group)
        self._usage[group] = core_seconds

    def sample_every(self, every_s: float, callback: Callable[[SimulatedCluster], None]) -> None:
        """Call ``callback`` now and every ``every_s`` of simulated time while the
        simulation runs (after the events and the pass at that time)."""
        self._sampling = (every_s, callback)
        self._push(self.now, _SAMPLE, None)

    # --- reading the state -------------------------------------------------------------
    def decayed_usage(self) -> dict[str, float]:
        """Every group's decayed usage (core-seconds) at the current simulated time."""
        for group in list(self._usage_at):  # every group that ran or has a history
            self._settle(group)
        return dict(self._usage)

    def core_seconds(self) -> dict[str, float]:
        """Every group's core-seconds (not decayed) from the start of the simulation."""
        self.decayed_usage()
        return dict(self._core_seconds)

    def busy_cores(self) -> int:
        return sum(self.running_cores.values())

    @property
    def makespan_s(self) -> float:
        """When the last VM that ran stopped (0 if none ran)."""
        return max((r.ends_at for r in self.finished.values()), default=0.0)

    # --- running -------------------------------------------------------------------------
    def run(self, until: float | None = None) -> None:
        """Handle events in time order until there are none left (samples aside) or the
        next one is after ``until``."""
        while self._events:
            at, kind, _, payload = self._events[0]
            if until is not None and at > until:
                break
            if kind == _SAMPLE and not self._not_samples:
                break
            heapq.heappop(self._events)
            if kind != _SAMPLE:
                self._not_samples -= 1
            self.now = at
            if kind == _END:
                self._end(str(payload))
            elif kind == _ARRIVAL:
                assert isinstance(payload, SimulatedVm)
                self._enqueue(payload)
            elif kind == _PASS:
                self._pass_due = None
                self._pass()
            else:
                assert self._sampling is not None
                every, callback = self._sampling
                callback(self)
                self._push(at + every, _SAMPLE, None)
        if until is not None and until > self.now:
            self.now = until

    def _push(self, at: float, kind: int, payload: object) -> None:
        self._seq += 1
        if kind != _SAMPLE:
            self._not_samples += 1
        heapq.heappush(self._events, (at, kind, self._seq, payload))

    def _enqueue(self, vm: SimulatedVm) -> None:
        if vm.vm_id in self.pending or vm.vm_id in self.running or vm.vm_id in self.finished:
            raise ValueError(f"VM {vm.vm_id} submitted twice")
        self.pending[vm.vm_id] = (vm, vm.demand())
        self._changed()

    def _end(self, vm_id: str) -> None:
        vm, run = self.running.pop(vm_id)
        self._settle(vm.group)
        self.by_name[run.host].give_back(vm)
        self.running_cores[vm.group] -= vm.vcpus
        if not self.running_cores[vm.group]:
            del self.running_cores[vm.group]
        self.finished[vm_id] = run
        if self.pending:
            self._changed()

    def _changed(self) -> None:
        """Something a pass could use has changed: make sure one is coming."""
        if self._pass_due is not None:
            return
        if self.pass_interval_s > 0:
            tick = math.ceil(self.now / self.pass_interval_s) * self.pass_interval_s
            if self._last_pass_at is not None and tick <= self._last_pass_at:
                tick = self._last_pass_at + self.pass_interval_s
        else:
            tick = self.now
        self._pass_due = tick
        self._push(tick, _PASS, None)

    def _settle(self, group: str) -> None:
        """Bring ``group``'s decayed usage up to now."""
        at = self._usage_at.get(group)
        self._usage_at[group] = self.now
        if at is None:
            self._usage.setdefault(group, 0.0)
            self._core_seconds.setdefault(group, 0.0)
            return
        elapsed = self.now - at
        if elapsed <= 0:
            return
        half_life = self.policy.half_life_s
        used = decay(self._usage[group], elapsed, half_life)
        cores = self.running_cores.get(group, 0)
        self._core_seconds[group] += cores * elapsed
        if cores and half_life > 0:
            used += cores * half_life / LN2 * -math.expm1(-LN2 * elapsed / half_life)
        self._usage[group] = used

    def _pass(self) -> None:
        self._last_pass_at = self.now
        if not self.pending:
            return
        usage = self.decayed_usage()
        snapshots = [h.snapshot() for h in self.hosts]
        running = [run.record for _, run in self.running.values()]
        demands = [demand for _, demand in self.pending.values()]
        policy, now = self.policy, self.now

        if self.profile is not None:
            self.profile.enable()
        started = time.perf_counter()
        factors = fairshare_factors(policy.fairshare, self.shares, usage)
        order = priorities(demands, factors, policy, now)
        decision = place(
            demands,
            snapshots,
            now=now,
            policy=policy,
            priorities=order,
            running=running,
            fairshare=FairShareInputs(self.shares, usage),
        )
        seconds = time.perf_counter() - started
        if self.profile is not None:
            self.profile.disable()

        record = PassRecord(now, len(demands), len(decision.placements), seconds, len(running))
        self.passes.append(record)
        for vm_id, host in decision.placements.items():
            entry = self.pending.pop(vm_id, None)
            if entry is None:
                raise SimulationError(f"the scheduler placed {vm_id}, which is not waiting")
            vm = entry[0]
            h = self.by_name.get(host)
            if h is None:
                raise SimulationError(f"the scheduler placed {vm_id} on unknown host {host}")
            if not h.fits(vm):
                raise SimulationError(
                    f"the scheduler overcommitted {host}: {vm_id} needs {vm.vcpus} cores and "
                    f"{vm.memory_mb} MiB, {h.cores - h.used_cores} cores and "
                    f"{h.memory_mb - h.used_memory_mb} MiB are free"
                )
            self.start(vm, host)
        if self.on_pass is not None:
            self.on_pass(self, record, decision)


def placement_rate(passes: list[PassRecord]) -> float:
    """VMs placed per wall-clock second spent in the scheduler over ``passes``."""
    seconds = sum(p.seconds for p in passes)
    return sum(p.placed for p in passes) / seconds if seconds > 0 else float("nan")
