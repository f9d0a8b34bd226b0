"""The benchmarks' simulator of a cluster of simulated hosts: its bookkeeping (time,
resources, decayed usage) around the real scheduler."""

from __future__ import annotations

import math

import pytest
from bench.simulated_cluster import (
    PassRecord,
    SimulatedCluster,
    SimulatedHost,
    SimulatedVm,
    SimulationError,
)

from gridvm.scheduler import Decision, Policy

IMAGE = "sha256:" + "0" * 64


def vm(
    vm_id: str, group: str = "g", cores: int = 1, run: float = 100.0, **kw: object
) -> SimulatedVm:
    fields: dict[str, object] = {
        "vm_id": vm_id,
        "group": group,
        "vcpus": cores,
        "memory_mb": 1024 * cores,
        "image": IMAGE,
        "duration_s": run,
        "walltime_s": 3600,
    }
    fields.update(kw)
    return SimulatedVm(**fields)  # type: ignore[arg-type]


def cluster(hosts: int = 2, cores: int = 2, **kw: object) -> SimulatedCluster:
    machines = [SimulatedHost(f"sim-{i}", cores, 1024 * cores) for i in range(hosts)]
    return SimulatedCluster(machines, policy=Policy(seed=1), **kw)  # type: ignore[arg-type]


def test_makespan_of_waves_is_exact() -> None:
    # 4 cores, ten 100 s one-core VMs: waves of 4, 4 and 2 end at 100, 200 and 300 s.
    c = cluster()
    c.submit(vm(f"v{i}") for i in range(10))
    c.run()
    assert c.makespan_s == pytest.approx(300.0)
    assert [p.placed for p in c.passes] == [4, 4, 2]
    assert [p.at for p in c.passes] == [0.0, 100.0, 200.0]


def test_passes_wait_for_the_next_tick() -> None:
    # Ends at 100 s are seen by the pass at 120 s, those at 220 s by the one at 240 s.
    c = cluster(pass_interval_s=60.0)
    c.submit(vm(f"v{i}") for i in range(10))
    c.run()
    assert [p.at for p in c.passes] == [0.0, 120.0, 240.0]
    assert c.makespan_s == pytest.approx(340.0)


def test_control_plane_delays_hold_resources() -> None:
    # One core: the VM placed at 0 runs 1-101 and frees its core at 102; the next is
    # placed at 102 and runs 103-203.
    c = cluster(hosts=1, cores=1, start_delay_s=1.0, release_delay_s=1.0)
    c.submit([vm("first"), vm("second")])
    c.run()
    assert c.finished["first"].started_at == pytest.approx(1.0)
    assert c.finished["second"].started_at == pytest.approx(103.0)
    assert c.makespan_s == pytest.approx(203.0)


def test_resources_are_freed_and_never_overcommitted() -> None:
    seen: list[tuple[str, int, int]] = []

    def check(c: SimulatedCluster, record: PassRecord, decision: Decision) -> None:
        for h in c.hosts:
            assert 0 <= h.used_cores <= h.cores
            assert 0 <= h.used_memory_mb <= h.memory_mb
            seen.append((h.name, h.used_cores, h.used_memory_mb))
        assert sum(h.used_cores for h in c.hosts) == c.busy_cores()

    c = cluster(hosts=3, cores=4, on_pass=check)
    c.submit(
        vm(f"v{i}", group=f"g{i % 3}", cores=1 + i % 3, run=50.0 + 7 * i, submit_at=3.0 * i)
        for i in range(40)
    )
    c.run()
    assert len(c.finished) == 40 and not c.running and not c.pending
    assert all(h.used_cores == 0 and h.used_memory_mb == 0 for h in c.hosts)
    assert not c.busy_cores()
    assert any(cores == 4 for _, cores, _ in seen)  # the cluster did fill up


def test_a_vm_stops_at_its_walltime() -> None:
    c = cluster(hosts=1, cores=1)
    c.submit([vm("long", run=500.0, walltime_s=200)])
    c.run()
    assert c.finished["long"].ends_at == pytest.approx(200.0)


def test_a_vm_too_big_for_any_host_waits_and_the_run_ends() -> None:
    c = cluster(hosts=2, cores=2)
    c.submit([vm("huge", cores=8), vm("small")])
    c.run()
    assert set(c.pending) == {"huge"}
    assert "small" in c.finished


def test_decayed_usage_integrates_and_halves() -> None:
    half_life = 1000.0
    machines = [SimulatedHost("sim-0", 4, 4096)]
    c = SimulatedCluster(machines, policy=Policy(half_life_s=half_life))
    # Two cores for one half-life from nothing: 2 * h / ln 2 * (1 - 1/2) core-seconds.
    c.start(vm("a", cores=2, run=half_life), "sim-0")
    c.run(until=half_life)
    after_run = 2 * half_life / math.log(2) * 0.5
    assert c.decayed_usage()["g"] == pytest.approx(after_run)
    # Idle for one more half-life: halved. The raw core-seconds stay as they were.
    c.run(until=2 * half_life)
    assert c.decayed_usage()["g"] == pytest.approx(after_run / 2)
    assert c.core_seconds()["g"] == pytest.approx(2 * half_life)


def test_decayed_usage_matches_small_steps() -> None:
    """Against a brute-force sum: usage grows by cores * dt and decays each step."""
    half_life = 600.0
    machines = [SimulatedHost("sim-0", 8, 8192)]
    c = SimulatedCluster(machines, policy=Policy(half_life_s=half_life))
    runs = [(1, 300.0), (2, 450.0), (4, 100.0)]  # (cores, seconds), all starting at 0
    for i, (cores, seconds) in enumerate(runs):
        c.start(vm(f"v{i}", cores=cores, run=seconds), "sim-0")
    c.run(until=900.0)
    step, expected, t = 0.01, 0.0, 0.0
    while t < 900.0 - 1e-9:
        cores = sum(n for n, seconds in runs if t + step / 2 < seconds)
        expected = expected * 2 ** (-step / half_life) + cores * step
        t += step
    assert c.decayed_usage()["g"] == pytest.approx(expected, rel=1e-3)


def test_fair_share_decides_who_goes_first() -> None:
    # One core; "busy" submitted first but has used much more than "idle" (equal shares).
    c = cluster(hosts=1, cores=1, shares={"busy": 1.0, "idle": 1.0})
    c.set_usage("busy", 1e6)
    c.submit([vm("b1", group="busy"), vm("i1", group="idle", submit_at=0.0)])
    c.run()
    assert c.finished["i1"].started_at == 0.0
    assert c.finished["b1"].started_at == pytest.approx(100.0)


def test_the_scheduler_is_not_trusted_with_capacity() -> None:
    c = cluster(hosts=1, cores=1)
    with pytest.raises(SimulationError):
        c.start(vm("two", cores=2), "sim-0")
    with pytest.raises(SimulationError):
        c.start(vm("lost"), "nowhere")


def test_image_cache_drops_least_recently_used_images_not_in_use() -> None:
    host = SimulatedHost("sim-0", 8, 8192, cached_images=["x", "y"], cache_limit=2)
    a, b = vm("a", image="z"), vm("b", image="w")
    host.take(a)  # z in use: x (least recently used) goes
    assert list(host.cache) == ["y", "z"]
    host.take(b)  # w in use too: y goes
    assert list(host.cache) == ["z", "w"]
    host.give_back(a)
    assert host.snapshot().cached_images == frozenset({"z", "w"})
    assert host.snapshot().used_cores == 1


def test_samples_come_on_time_and_stop_with_the_work() -> None:
    times: list[float] = []
    c = cluster()
    c.submit(vm(f"v{i}") for i in range(10))
    c.sample_every(40.0, lambda cl: times.append(cl.now))
    c.run()
    assert times == [0.0, 40.0, 80.0, 120.0, 160.0, 200.0, 240.0, 280.0]
