"""B4b: scheduler throughput at scale: 10,000 hosts, 100,000 queued VMs, 100 groups.

The real scheduler (fair share, priorities, placement with backfill) drives a cluster
of *simulated hosts* (bench/simulated_cluster.py) until the queue is empty. Only the
wall-clock time inside the scheduler's functions is measured, on one core:
``fairshare_factors`` + ``priorities`` + ``place``, once per pass, as the server does.

The workload (seeded, the same at every run):

- 10,000 simulated hosts with 32, 48 or 64 cores (a third each, 480,000 cores in all)
  and 4 GiB of memory per core; 40 images, each host caching 3 at the start (by
  popularity) and at most 8 (least-recently-used images no VM uses are dropped).
- 100 groups: 10 VOs (shares 1-10) of 10 sub-groups each (shares 1-5), e.g.
  ``vo03/g07``; fair share on (classic, half-life 7 days) with a history: each
  group's decayed usage starts as if its running VMs had run for ever.
- The cluster is in production: 80% of every host's cores are busy with VMs of the
  same groups and kinds, each caught at a random point of its run.
- 100,000 VMs queued at the start, submitted during the 2 h before it, split among
  the groups by a Zipf law (a few busy groups, many quiet ones): 1, 2, 4 or 8 vCPUs
  (45/25/20/10%), 2 or 4 GiB per vCPU (70/30%), each group using 1-3 images, running
  10 min to 6 h (log-uniform) with a walltime 1.2-3 times that, rounded up to hours.
- A scheduling pass every 60 s of simulated time (Slurm's ``sched_interval``), with
  all waiting VMs, until every queued VM has been placed.

Reported: placements per second (VMs placed / wall seconds in the scheduler over all
passes; goal at least 5,000/s, ten times Slurm's published 500 jobs/s) and the p99
time of one pass. ``python -m bench B4b --quick`` (or BENCH_QUICK=1) runs a tenth of
it (1,000 hosts, 10,000 VMs) and writes B4b-quick.json; ``--profile`` (BENCH_PROFILE=1)
runs cProfile over the scheduler calls, prints where the time goes and writes it to
B4b-profiled.json (the profiler slows the run: its figures are not the benchmark's).
"""

from __future__ import annotations

import cProfile
import io
import math
import os
import pstats
import random
import statistics
import time
from dataclasses import dataclass
from typing import Any

from bench.report import percentile, publish
from bench.simulated_cluster import (
    SimulatedCluster,
    SimulatedHost,
    SimulatedVm,
    placement_rate,
)
from gridvm.scheduler import Policy

GOAL_PER_S = 5_000.0
HOUR = 3600.0
BUSY_AT_START = 0.80
PASS_INTERVAL_S = 60.0
MIN_RUN_S, MAX_RUN_S = 600.0, 6 * HOUR
SIZES = ((1, 0.45), (2, 0.25), (4, 0.20), (8, 0.10))


@dataclass(frozen=True)
class Scale:
    hosts: int
    vms: int
    vos: int = 10
    groups_per_vo: int = 10
    images: int = 40


FULL = Scale(hosts=10_000, vms=100_000)
QUICK = Scale(hosts=1_000, vms=10_000)


def _log_uniform(rng: random.Random, low: float, high: float) -> float:
    return math.exp(rng.uniform(math.log(low), math.log(high)))


def _walltime(rng: random.Random, duration: float) -> float:
    """What the user asks for: 1.2-3 times the run, rounded up to hours."""
    return math.ceil(duration * rng.uniform(1.2, 3) / HOUR) * HOUR


def _size(rng: random.Random) -> int:
    return rng.choices([s for s, _ in SIZES], weights=[w for _, w in SIZES])[0]


def build(scale: Scale, policy: Policy, seed: int = 4) -> SimulatedCluster:
    rng = random.Random(seed)
    images = [f"sha256:{rng.getrandbits(256):064x}" for _ in range(scale.images)]
    popularity = [1 / (rank + 1) for rank in range(scale.images)]

    shares: dict[str, float] = {}
    for v in range(scale.vos):
        shares[f"vo{v:02d}"] = float(rng.randint(1, 10))
        for sub in range(scale.groups_per_vo):
            shares[f"vo{v:02d}/g{sub:02d}"] = float(rng.randint(1, 5))
    groups = [path for path in shares if "/" in path]
    group_images = {g: rng.choices(images, weights=popularity, k=rng.randint(1, 3)) for g in groups}

    hosts = []
    for i in range(scale.hosts):
        cores = rng.choice((32, 48, 64))
        cached: list[str] = []  # a list, not a set: the LRU order must not depend on hashing
        while len(cached) < 3:
            image = rng.choices(images, weights=popularity)[0]
            if image not in cached:
                cached.append(image)
        hosts.append(SimulatedHost(f"sim-{i:05d}", cores, cores * 4096, cached, cache_limit=8))
    cluster = SimulatedCluster(hosts, policy=policy, shares=shares, pass_interval_s=PASS_INTERVAL_S)

    def vm(vm_id: str, group: str, duration: float, walltime: float, submit: float) -> SimulatedVm:
        vcpus = _size(rng)
        per_core = 4096 if rng.random() < 0.3 else 2048
        return SimulatedVm(
            vm_id=vm_id,
            group=group,
            user=f"{group}/u{rng.randrange(5)}",
            vcpus=vcpus,
            memory_mb=vcpus * per_core,
            image=rng.choice(group_images[group]),
            duration_s=duration,
            walltime_s=int(walltime),
            submit_at=submit,
        )

    # Production load: 80% of every host's cores, from groups in proportion to shares.
    weights = [shares[g] * shares[g.split("/")[0]] for g in groups]
    n = 0
    for h in hosts:
        while True:
            # A VM caught at a random point of its run: its length is length-biased
            # (uniform, where the queue's is log-uniform) and it has run a uniform part.
            duration = rng.uniform(MIN_RUN_S, MAX_RUN_S)
            walltime = _walltime(rng, duration)
            candidate = vm(f"bg-{n}", rng.choices(groups, weights)[0], duration, walltime, 0.0)
            if h.used_cores + candidate.vcpus > BUSY_AT_START * h.cores or not h.fits(candidate):
                break
            cluster.start(candidate, h.name, elapsed_s=rng.uniform(0, duration - 1))
            n += 1
    for group in groups:
        # History: as if the group had always run what it runs now.
        history = cluster.running_cores[group] * policy.half_life_s / math.log(2)
        cluster.set_usage(group, history)

    # The queue: Zipf-distributed among the groups.
    activity = [1 / (rank + 1) ** 0.7 for rank in range(len(groups))]
    rng.shuffle(activity)
    queued = []
    for i in range(scale.vms):
        duration = _log_uniform(rng, MIN_RUN_S, MAX_RUN_S)
        walltime = _walltime(rng, duration)
        group = rng.choices(groups, activity)[0]
        queued.append(vm(f"q-{i:06d}", group, duration, walltime, rng.uniform(-2 * HOUR, 0)))
    queued.sort(key=lambda v: v.submit_at)
    cluster.submit(queued)
    return cluster


def _profile_text(profile: cProfile.Profile) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(30)
    return out.getvalue()


def main() -> None:
    quick = os.environ.get("BENCH_QUICK", "") not in ("", "0")
    profiling = os.environ.get("BENCH_PROFILE", "") not in ("", "0")
    scale = QUICK if quick else FULL
    policy = Policy(seed=7)

    began = time.perf_counter()
    cluster = build(scale, policy)
    queued = len(cluster.pending)
    background = len(cluster.running)
    built = time.perf_counter() - began
    print(
        f"B4b: {scale.hosts} simulated hosts, {background} VMs running, {queued} queued "
        f"(built in {built:.1f} s); running passes..."
    )
    profile = cProfile.Profile() if profiling else None
    if profile is not None:
        cluster.profile = profile

    def progress(c: SimulatedCluster, record: Any, decision: Any) -> None:
        n = len(c.passes)
        if n <= 3 or n % 10 == 0:
            print(
                f"  pass {n:4d} at t={record.at / 60:6.1f} min: {record.pending:6d} waiting, "
                f"{record.placed:6d} placed in {record.seconds:7.3f} s",
                flush=True,
            )

    cluster.on_pass = progress
    cluster.run()
    total = time.perf_counter() - began
    profile_text = _profile_text(profile) if profile is not None else ""
    print(profile_text)

    passes = cluster.passes
    placed = sum(p.placed for p in passes)
    seconds = [p.seconds for p in passes]
    rest = passes[1:]
    per_waiting_us = [1e6 * p.seconds / p.pending for p in passes if p.pending]
    rows: list[dict[str, Any]] = [
        {
            "what": "all passes",
            "passes": len(passes),
            "placed": placed,
            "sched_s": sum(seconds),
            "per_s": placement_rate(passes),
            "pass_p50_s": percentile(seconds, 50),
            "pass_p99_s": percentile(seconds, 99),
        },
        {
            "what": "first pass (fills the idle 20%)",
            "passes": 1,
            "placed": passes[0].placed,
            "sched_s": passes[0].seconds,
            "per_s": placement_rate(passes[:1]),
            "pass_p50_s": passes[0].seconds,
            "pass_p99_s": passes[0].seconds,
        },
        {
            "what": "later passes (as VMs end)",
            "passes": len(rest),
            "placed": sum(p.placed for p in rest),
            "sched_s": sum(p.seconds for p in rest),
            "per_s": placement_rate(rest),
            "pass_p50_s": percentile([p.seconds for p in rest], 50),
            "pass_p99_s": percentile([p.seconds for p in rest], 99),
        },
    ]
    name = "B4b-quick" if quick else "B4b"
    if profiling:
        name += "-profiled"
    rate = placement_rate(passes)
    publish(
        name,
        f"{scale.hosts} simulated hosts, {queued} queued VMs, {scale.vos * scale.groups_per_vo}"
        " groups, fair share on",
        rows,
        {
            "placements_per_second": rate,
            "pass_p99_seconds": percentile(seconds, 99),
            "goal_placements_per_second": GOAL_PER_S,
            "within_goal": rate >= GOAL_PER_S,
            "quick": quick,
            "profiled": profiling,
            "hosts": scale.hosts,
            "cores": sum(h.cores for h in cluster.hosts),
            "groups": scale.vos * scale.groups_per_vo,
            "queued_vms": queued,
            "background_vms": background,
            "unplaced_vms": len(cluster.pending),
            "passes": len(passes),
            "pass_interval_s": PASS_INTERVAL_S,
            "simulated_hours": cluster.now / HOUR,
            "scheduler_seconds": sum(seconds),
            "seconds_per_waiting_vm_per_pass_p50": percentile(per_waiting_us, 50) / 1e6,
            "mean_waiting_per_pass": statistics.fmean(p.pending for p in passes),
            "wall_seconds_total": total,
            "timed": "fairshare_factors + priorities + place, per pass, one core",
            **({"profile": profile_text.splitlines()} if profiling else {}),
        },
    )
    print(f"total run time {total:.0f} s ({sum(seconds):.0f} s in the scheduler)")
