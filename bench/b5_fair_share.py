"""B5: fair share after a burst. Three groups with shares 50/30/20; one runs alone for
12 h, then all three compete. How long until each holds its share, and how closely?

The real scheduler (classic fair share, priorities, placement with backfill) drives
32 *simulated hosts* x 16 cores (512 cores, 64 GiB each; bench/simulated_cluster.py).
VMs have 1, 2 or 4 vCPUs (50/30/20%), 2 GiB per vCPU, run 30-90 min (uniform, mean
1 h, far shorter than any half-life, so the scheduler can steer) with a 2 h walltime.
A group that competes keeps VMs waiting: after each pass, its queue is topped up to
32 VMs (submitted then); the group that bursts first queues enough to fill the cluster.
A pass runs on each 60 s tick at which something changed.

Definitions (printed with the results):

- share of a group: its core-seconds / all groups' core-seconds over the hour before
  each sample, i.e. its fraction of the cluster's busy cores over that hour, sampled
  every 10 min of simulated time (the JSON also has the share at the sample instant,
  and the group's fraction of all decayed usage, which is what fair share steers);
- a group has converged at T if its share stays within 5 percentage points of its
  target at every sample from T to the end of the run; convergence = the latest of the
  three, counted from the start of competition, in half-lives;
- mean share error: |share - target| averaged over the three groups and over the
  samples from one half-life after competition starts to the end of the run (0.5
  half-lives later): the steady state.

Runs: each of the three groups bursting, with the policy's default half-life (7 days)
and with a 1-day half-life. The headline (B5.json) is the worst of the three bursts at
the default half-life; the rest is reported beside it. Goal: convergence within one
half-life, mean share error at most 3%.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

from bench.report import RESULTS, publish
from bench.simulated_cluster import SimulatedCluster, SimulatedHost, SimulatedVm
from gridvm.scheduler import Policy

HOUR, DAY = 3600.0, 86400.0
SHARES = {"a": 50.0, "b": 30.0, "c": 20.0}
TARGET = {g: s / sum(SHARES.values()) for g, s in SHARES.items()}
HOSTS, CORES, MEMORY_MB = 32, 16, 64 * 1024
BURST_S = 12 * HOUR
SAMPLE_S = 600.0
WINDOW_S = HOUR
PASS_INTERVAL_S = 60.0
DEPTH = 32
TOLERANCE = 0.05
AFTER_HALF_LIVES = 1.5  # how long the competition runs
DEFAULT_HALF_LIFE_S = Policy().half_life_s


Series = dict[str, list[float]]


def _series() -> Series:
    return {g: [] for g in SHARES}


@dataclass
class Outcome:
    burst: str
    half_life_s: float
    times: list[float] = field(default_factory=list)  # simulated seconds
    hourly: Series = field(default_factory=_series)  # share over the hour before each sample
    instant: Series = field(default_factory=_series)  # share at the sample
    usage: Series = field(default_factory=_series)  # fraction of decayed usage
    passes: int = 0
    vms: int = 0

    @property
    def start(self) -> float:
        return BURST_S

    def converged_at(self, series: Series, group: str, tolerance: float) -> float:
        """Half-lives from the start of competition until ``group`` stays within
        ``tolerance`` of its target to the end (inf if it is not within it at the end)."""
        since = math.inf
        for t, share in zip(self.times, series[group], strict=True):
            if t < self.start:
                continue
            within = abs(share - TARGET[group]) <= tolerance
            since = min(since, t) if within else math.inf
        return (since - self.start) / self.half_life_s

    def convergence(self, series: Series, relative: bool = False) -> float:
        return max(
            self.converged_at(series, g, TOLERANCE * TARGET[g] if relative else TOLERANCE)
            for g in SHARES
        )

    def mean_error(self, series: Series, from_half_lives: float) -> float:
        begin = self.start + from_half_lives * self.half_life_s
        errors = [
            abs(share - TARGET[g])
            for g in SHARES
            for t, share in zip(self.times, series[g], strict=True)
            if t >= begin
        ]
        return sum(errors) / len(errors)


def simulate(burst: str, half_life_s: float, seed: int = 5) -> Outcome:
    rng = random.Random(seed)
    policy = Policy(seed=seed, half_life_s=half_life_s)
    hosts = [SimulatedHost(f"sim-{i:02d}", CORES, MEMORY_MB) for i in range(HOSTS)]
    cluster = SimulatedCluster(hosts, policy=policy, shares=SHARES, pass_interval_s=PASS_INTERVAL_S)
    image = "sha256:" + "b5" * 32
    counter = 0

    def new_vm(group: str) -> SimulatedVm:
        nonlocal counter
        counter += 1
        vcpus = rng.choices((1, 2, 4), weights=(50, 30, 20))[0]
        return SimulatedVm(
            vm_id=f"{group}-{counter:06d}",
            group=group,
            vcpus=vcpus,
            memory_mb=2048 * vcpus,
            image=image,
            duration_s=rng.uniform(0.5 * HOUR, 1.5 * HOUR),
            walltime_s=int(2 * HOUR),
            submit_at=cluster.now,
        )

    def competing() -> list[str]:
        return list(SHARES) if cluster.now >= BURST_S else [burst]

    def top_up(c: SimulatedCluster, *_: Any) -> None:
        waiting = {g: 0 for g in SHARES}
        for vm, _demand in c.pending.values():
            waiting[vm.group] += 1
        for g in competing():
            c.submit(new_vm(g) for _ in range(DEPTH - waiting[g]))

    outcome = Outcome(burst, half_life_s)

    window: list[dict[str, float]] = []  # core-seconds at the last WINDOW_S / SAMPLE_S samples

    def sample(c: SimulatedCluster) -> None:
        if c.now >= BURST_S and not any(vm.group != burst for vm, _ in c.pending.values()):
            top_up(c)  # the others join
        busy = c.busy_cores()
        used = c.decayed_usage()
        total_used = sum(used.values())
        held = c.core_seconds()
        window.append(held)
        first = window.pop(0) if len(window) > WINDOW_S / SAMPLE_S else window[0]
        spent = {g: held.get(g, 0.0) - first.get(g, 0.0) for g in SHARES}
        total_spent = sum(spent.values())
        outcome.times.append(c.now)
        for g in SHARES:
            outcome.instant[g].append(c.running_cores.get(g, 0) / busy if busy else 0.0)
            outcome.hourly[g].append(spent[g] / total_spent if total_spent else math.nan)
            outcome.usage[g].append(used.get(g, 0.0) / total_used if total_used else 0.0)

    cluster.on_pass = top_up
    cluster.submit(new_vm(burst) for _ in range(HOSTS * CORES))
    cluster.sample_every(SAMPLE_S, sample)
    cluster.run(until=BURST_S + AFTER_HALF_LIVES * half_life_s)
    outcome.passes = len(cluster.passes)
    outcome.vms = counter
    return outcome


def plot(outcomes: list[Outcome]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    half_lives = sorted({o.half_life_s for o in outcomes}, reverse=True)
    fig, axes = plt.subplots(
        len(half_lives), len(SHARES), figsize=(16, 4.4 * len(half_lives)), squeeze=False
    )
    colours = {"a": "tab:blue", "b": "tab:orange", "c": "tab:green"}
    for o in outcomes:
        ax = axes[half_lives.index(o.half_life_s)][list(SHARES).index(o.burst)]
        hours = [t / HOUR for t in o.times]
        for g in SHARES:
            ax.plot(hours, [100 * s for s in o.instant[g]], color=colours[g], lw=0.5, alpha=0.3)
            ax.plot(
                hours,
                [100 * s for s in o.hourly[g]],
                color=colours[g],
                lw=1.2,
                label=f"{g} (share {SHARES[g]:g})",
            )
            ax.axhline(100 * TARGET[g], color=colours[g], ls="--", lw=1)
        ax.axvline(BURST_S / HOUR, color="grey", ls=":", lw=1)
        ax.axvline((BURST_S + o.half_life_s) / HOUR, color="grey", ls="-.", lw=1)
        ax.set_ylim(0, 100)
        ax.set_xlabel("simulated hours (dotted: competition starts; dash-dot: +1 half-life)")
        ax.set_ylabel("% of busy cores")
        converged, error = o.convergence(o.hourly), o.mean_error(o.hourly, 1.0)
        ax.set_title(
            f"{o.burst} bursts 12 h, half-life {o.half_life_s / DAY:g} d: converged "
            f"{converged:.2f} half-lives, error {100 * error:.1f}%",
            fontsize=10,
        )
        ax.legend(loc="upper right", fontsize=8)
    fig.suptitle(
        "B5: each group's share of the cluster's busy cores over the past hour "
        "(faint: at the instant; dashed: targets 50/30/20)"
    )
    fig.tight_layout()
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "B5_shares.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    print(f"wrote {out}")


DEFINITIONS = {
    "share": "a group's core-seconds / all groups' core-seconds over the hour before each "
    f"sample (samples every {SAMPLE_S:g} s of simulated time): its fraction of the "
    "cluster's busy cores over that hour",
    "convergence": "latest over the three groups of the first sample time after which "
    f"|share - target| <= {TOLERANCE:g} (5 percentage points) at every sample to the end "
    "of the run; counted from the start of competition, in half-lives",
    "mean_share_error": "mean |share - target| over the three groups and the samples from "
    f"one half-life after competition starts to the end ({AFTER_HALF_LIVES:g} half-lives)",
    "instant": "the same with the share at the sample instant (cores held now / busy cores)",
    "usage": "the same with the group's fraction of all decayed usage (what fair share steers)",
    "relative": "convergence_relative_half_lives (JSON): within 5% of the target itself "
    "(2.5/1.5/1 points), hourly share",
}


def _finite(value: float) -> float | None:
    """JSON has no infinity: None stands for "never" (not converged by the end)."""
    return value if math.isfinite(value) else None


def details(o: Outcome) -> dict[str, Any]:
    return {
        "burst": o.burst,
        "half_life_days": o.half_life_s / DAY,
        "convergence_half_lives": _finite(o.convergence(o.hourly)),
        "convergence_hours": _finite(o.convergence(o.hourly) * o.half_life_s / HOUR),
        "mean_share_error": o.mean_error(o.hourly, 1.0),
        "mean_share_error_from_competition_start": o.mean_error(o.hourly, 0.0),
        "convergence_relative_half_lives": _finite(o.convergence(o.hourly, relative=True)),
        "instant_convergence_half_lives": _finite(o.convergence(o.instant)),
        "instant_mean_share_error": o.mean_error(o.instant, 1.0),
        "usage_convergence_half_lives": _finite(o.convergence(o.usage)),
        "usage_mean_share_error": o.mean_error(o.usage, 1.0),
        "passes": o.passes,
        "vms": o.vms,
    }


def _never(value: float | None) -> float | str:
    return "never" if value is None else value


def row(d: dict[str, Any]) -> dict[str, Any]:
    """The printed columns (the JSON has all of ``details``)."""
    return {
        "what": f"{d['burst']} bursts, {d['half_life_days']:g} d",
        "conv_hl": _never(d["convergence_half_lives"]),
        "err_%": 100 * d["mean_share_error"],
        "inst_conv": _never(d["instant_convergence_half_lives"]),
        "inst_err_%": 100 * d["instant_mean_share_error"],
        "usage_err_%": 100 * d["usage_mean_share_error"],
    }


def main() -> None:
    report(
        [simulate(burst, half_life) for half_life in (DEFAULT_HALF_LIFE_S, DAY) for burst in SHARES]
    )


def report(outcomes: list[Outcome]) -> None:
    runs = [details(o) for o in outcomes]
    for name, text in DEFINITIONS.items():
        print(f"{name}: {text}")
    headline = [d for d in runs if d["half_life_days"] * DAY == DEFAULT_HALF_LIFE_S]
    convergences = [d["convergence_half_lives"] for d in headline]
    worst_conv = None if None in convergences else max(convergences)
    worst_err = max(d["mean_share_error"] for d in headline)
    publish(
        "B5",
        f"fair share 50/30/20 after a 12 h burst, {HOSTS} simulated hosts x {CORES} cores",
        [row(d) for d in runs],
        {
            "convergence_half_lives": worst_conv,
            "mean_share_error": worst_err,
            "goal": "convergence within 1 half-life, mean share error at most 3%",
            "within_goal": worst_conv is not None and worst_conv <= 1.0 and worst_err <= 0.03,
            "headline": "worst of the three bursting groups, default half-life "
            f"({DEFAULT_HALF_LIFE_S / DAY:g} days), hourly shares",
            "half_life_s": DEFAULT_HALF_LIFE_S,
            "definitions": DEFINITIONS,
            "cluster": {"hosts": HOSTS, "cores_per_host": CORES, "memory_mb": MEMORY_MB},
            "jobs": "1/2/4 vCPUs (50/30/20%), 2 GiB per vCPU, 30-90 min, walltime 2 h",
            "queue": f"each competing group topped up to {DEPTH} waiting VMs after each pass",
            "fairshare": Policy().fairshare.value,
            "pass_interval_s": PASS_INTERVAL_S,
            "burst_hours": BURST_S / HOUR,
            "runs": runs,
        },
    )
    plot(outcomes)
