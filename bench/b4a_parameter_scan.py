"""B4a: the seed's scenario, 1024 one-hour single-core VMs on 16 hosts x 8 cores.

128 cores run 1024 one-hour VMs in 8 waves: the ideal makespan is 8 h. The real
scheduler places them on 16 *simulated hosts* (bench/simulated_cluster.py); the
makespan is the simulated time at which the last VM stops. Two runs:

- scheduler alone: a pass at every simulated time something changes, no latency;
- server loop: a pass on every tick of the server's scheduler interval (1 s), a VM's
  clock starting 1 s after its placement (the agent's poll) and its resources freed
  1 s after it stops (the agent's report).

Goal: makespan within 1% of the ideal.
"""

from __future__ import annotations

from typing import Any

from bench.report import publish
from bench.simulated_cluster import SimulatedCluster, SimulatedHost, SimulatedVm
from gridvm.common.config import ServerConfig
from gridvm.scheduler import Policy

HOSTS, CORES, MEMORY_MB = 16, 8, 32 * 1024
VMS, HOUR = 1024, 3600.0
IMAGE = "sha256:" + "5ca1ab1e" * 8
IDEAL_HOURS = VMS * HOUR / (HOSTS * CORES) / 3600


def scan(pass_interval_s: float, delay_s: float) -> SimulatedCluster:
    hosts = [SimulatedHost(f"sim-{i:02d}", CORES, MEMORY_MB) for i in range(HOSTS)]
    cluster = SimulatedCluster(
        hosts,
        policy=Policy(seed=1),
        shares={"physics": 1.0},
        pass_interval_s=pass_interval_s,
        start_delay_s=delay_s,
        release_delay_s=delay_s,
    )
    cluster.submit(
        SimulatedVm(
            vm_id=f"scan-{i:04d}",
            group="physics",
            vcpus=1,
            memory_mb=2048,
            image=IMAGE,
            duration_s=HOUR,
            walltime_s=int(HOUR),
        )
        for i in range(VMS)
    )
    cluster.run()
    if len(cluster.finished) != VMS:
        raise RuntimeError(f"only {len(cluster.finished)} of {VMS} VMs ran")
    return cluster


def main() -> None:
    interval = ServerConfig.__dataclass_fields__["scheduler_interval_s"].default
    assert isinstance(interval, float)
    runs = {
        "scheduler alone": scan(0.0, 0.0),
        f"server loop ({interval:g} s passes, 1 s agent)": scan(interval, 1.0),
    }
    rows: list[dict[str, Any]] = []
    for what, cluster in runs.items():
        hours = cluster.makespan_s / 3600
        rows.append(
            {
                "what": what,
                "makespan_h": hours,
                "ideal_h": IDEAL_HOURS,
                "over_%": 100 * (hours / IDEAL_HOURS - 1),
                "passes": len(cluster.passes),
                "placed": sum(p.placed for p in cluster.passes),
                "sched_s": sum(p.seconds for p in cluster.passes),
            }
        )
    headline = rows[-1]
    publish(
        "B4a",
        f"{VMS} one-hour 1-core VMs on {HOSTS} simulated hosts x {CORES} cores",
        rows,
        {
            "makespan_hours": headline["makespan_h"],
            "ideal_hours": IDEAL_HOURS,
            "over_ideal_percent": headline["over_%"],
            "within_goal": headline["over_%"] <= 1.0,
            "goal": "makespan within 1% of the ideal",
            "scheduler_alone_makespan_hours": rows[0]["makespan_h"],
            "passes": headline["passes"],
            "placements": headline["placed"],
            "hosts": HOSTS,
            "cores_per_host": CORES,
            "vms": VMS,
        },
    )
