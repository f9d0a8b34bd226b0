"""Whole passes over literal pictures: priority order, backfill, gangs, affinity,
reservations, quotas, random choice among the best hosts."""

from __future__ import annotations

from collections import Counter

from gridvm.scheduler import (
    Affinity,
    FairShareInputs,
    Policy,
    QuotaBook,
    QuotaLimit,
    Reservation,
    RunningVm,
    place,
)
from tests.scheduler.helpers import host, vm

HOUR = 3600


def test_higher_priority_goes_first() -> None:
    decision = place(
        [vm("low", cpus=2), vm("high", cpus=2)],
        [host("h", cores=2)],
        priorities={"low": 1.0, "high": 5.0},
    )
    assert decision.placements == {"high": "h"}
    assert decision.priorities == {"low": 1.0, "high": 5.0}


def test_backfill_starts_a_short_vm_that_cannot_delay_the_first_waiting_one() -> None:
    hosts = [host("h", cores=6, used_cores=2)]
    running = [RunningVm("h", vcpus=2, memory_mb=256, ends_at=HOUR)]  # frees 2 cores in 1 h
    pending = [
        vm("big", cpus=6, walltime_s=HOUR),  # first in line: fits at t = 1 h
        vm("short", cpus=2, walltime_s=HOUR // 2),  # ends before then: may start now
        vm("long", cpus=2, walltime_s=2 * HOUR),  # would delay "big"
    ]
    decision = place(pending, hosts, now=0.0, running=running)
    assert decision.placements == {"short": "h"}
    assert "kept free for a higher-priority VM (backfill)" in decision.reasons["long"]


def test_without_backfill_nothing_passes_the_first_waiting_vm() -> None:
    decision = place(
        [vm("big", cpus=4), vm("short", cpus=1, walltime_s=60)],
        [host("h", cores=4, used_cores=2)],
        policy=Policy(backfill=False),
    )
    assert decision.placements == {}
    assert "waiting behind big" in decision.reasons["short"]


def test_a_vm_no_host_could_ever_take_holds_nobody_back() -> None:
    decision = place(
        [vm("arm", arch="aarch64"), vm("x86")], [host("h")], policy=Policy(backfill=False)
    )
    assert decision.placements == {"x86": "h"}
    assert "1 host is of another architecture" in decision.reasons["arm"]


def test_a_gang_starts_whole_or_not_at_all() -> None:
    gang = [vm(f"g{i}", cpus=4, deployment="d", gang=True) for i in range(3)]
    decision = place(gang, [host("h0", cores=4), host("h1", cores=4)])
    assert decision.placements == {}
    assert decision.reasons["g0"].startswith("its gang of 3 cannot start together: ")
    # The cores the partial gang took are free again for the next VM.
    decision = place([*gang, vm("solo", cpus=4)], [host("h0", cores=4), host("h1", cores=4)])
    assert list(decision.placements) == ["solo"]
    whole = place(gang, [host(f"h{i}", cores=4) for i in range(3)])
    assert sorted(whole.placements) == ["g0", "g1", "g2"]


def test_anti_affinity_puts_members_on_different_hosts() -> None:
    members = [vm(f"m{i}", deployment="d", affinity=Affinity.different_hosts) for i in range(3)]
    decision = place(members, [host("h0"), host("h1"), host("h2")])
    assert sorted(decision.placements.values()) == ["h0", "h1", "h2"]
    crowded = place(members, [host("h0"), host("h1")])
    assert len(crowded.placements) == 2
    assert "holding another member of its deployment" in crowded.reasons["m2"]


def test_affinity_puts_members_with_those_already_running() -> None:
    members = [vm(f"m{i}", deployment="d", affinity=Affinity.same_host) for i in range(2)]
    running = [RunningVm("h1", 1, 256, ends_at=HOUR, deployment="d")]
    decision = place(members, [host("h0"), host("h1"), host("h2")], running=running)
    assert set(decision.placements.values()) == {"h1"}


def test_a_reservation_keeps_its_cores_for_its_group() -> None:
    reservation = Reservation("r", group="cms", cores=8, start=0, end=4 * HOUR, hosts=("h0",))
    hosts = [host("h0", cores=8), host("h1", cores=8, used_cores=8)]
    decision = place(
        [vm("atlas-vm", group="atlas"), vm("cms-vm", group="cms")],
        hosts,
        now=HOUR,
        reservations=[reservation],
    )
    assert decision.placements == {"cms-vm": "h0"}
    assert "1 host is reserved for another group" in decision.reasons["atlas-vm"]


def test_a_reservation_in_the_future_is_usable_by_short_vms_only() -> None:
    reservation = Reservation("r", group="cms", cores=8, start=2 * HOUR, end=4 * HOUR)
    hosts = [host("h0", cores=8)]
    short = place([vm("s", group="atlas", walltime_s=HOUR)], hosts, reservations=[reservation])
    long = place([vm("l", group="atlas", walltime_s=3 * HOUR)], hosts, reservations=[reservation])
    assert short.placements == {"s": "h0"}
    assert long.placements == {}


def test_quotas_hold_back_what_would_go_over() -> None:
    book = QuotaBook({("group", "physics"): QuotaLimit(cores=3)}, {})
    pending = [vm(f"v{i}", group="physics") for i in range(5)] + [vm("bio", group="bio")]
    decision = place(pending, [host("h", cores=16)], quotas=book)
    assert sorted(decision.placements) == ["bio", "v0", "v1", "v2"]
    assert decision.reasons["v3"] == "group physics is at its quota: 3 of 3 cores in use"


def test_random_choice_among_equally_good_hosts_spreads_a_herd() -> None:
    hosts = [host(f"h{i}", cores=64) for i in range(4)]
    policy = Policy(spread=0.0, cache_affinity=0.0, load=0.0, top_k=4, seed=7)
    counts = Counter()
    for round_ in range(40):
        decision = place([vm(f"v{round_}")], hosts, policy=policy)
        counts.update(decision.placements.values())
        policy = Policy(spread=0.0, cache_affinity=0.0, load=0.0, top_k=4, seed=round_)
    assert len(counts) == 4  # every host was picked at some point
    deterministic = Policy(spread=0.0, cache_affinity=0.0, load=0.0, top_k=1)
    assert place([vm("v")], hosts, policy=deterministic).placements == {"v": "h0"}


def test_pack_fills_the_fullest_host_and_spread_the_emptiest() -> None:
    hosts = [host("empty", cores=8), host("half", cores=8, used_cores=4)]
    pack = Policy(spread=-1.0, cache_affinity=0.0, load=0.0, top_k=1)
    spread = Policy(spread=1.0, cache_affinity=0.0, load=0.0, top_k=1)
    assert place([vm("v")], hosts, policy=pack).placements == {"v": "half"}
    assert place([vm("v")], hosts, policy=spread).placements == {"v": "empty"}


def test_labels_and_zones_in_the_reason() -> None:
    hosts = [
        host("a", zones=frozenset({"dmz"})),
        host("b", labels={"gpu": "no"}),
        host("c", cores=1),
    ]
    want = vm("v", cpus=2, zones=frozenset({"trusted"}), selector="gpu = yes")
    reason = place([want], hosts).reasons["v"]
    assert "1 host is in a zone its image may not run in" in reason
    assert "2 hosts are without the labels it asks for" in reason


def test_after_a_vm_fails_smaller_ones_still_fit_and_larger_ones_share_its_reason() -> None:
    hosts = [host("h", cores=4, used_cores=2)]
    decision = place(
        [vm("big", cpus=4, walltime_s=60), vm("bigger", cpus=8), vm("small", cpus=2)],
        hosts,
        policy=Policy(backfill=False),
    )
    assert decision.reasons["bigger"].startswith("waiting behind big")
    decision = place([vm("big", cpus=4), vm("bigger", cpus=4, mem=512), vm("small")], hosts)
    assert decision.reasons["bigger"].startswith(decision.reasons["big"])
    assert decision.reasons["bigger"].endswith(
        "; 1 waiting VM goes first (higher priority or earlier)"
    )
    assert decision.placements == {"small": "h"}


def test_the_shadow_is_on_the_host_that_frees_room_first() -> None:
    hosts = [host("late", cores=4, used_cores=4), host("soon", cores=4, used_cores=4)]
    running = [
        RunningVm("late", vcpus=4, memory_mb=256, ends_at=5 * HOUR),
        RunningVm("soon", vcpus=2, memory_mb=256, ends_at=HOUR),
        RunningVm("soon", vcpus=2, memory_mb=256, ends_at=2 * HOUR),
    ]
    # "top" needs 4 cores: "soon" has them at 2 h, "late" at 5 h. A 3 h VM may not take
    # cores on "soon" (it would delay "top") but nothing is free anyway; once 2 cores
    # are free on "soon" at 1 h, a 30-minute VM could use them, a 3 h one could not.
    later = [RunningVm("late", 4, 256, ends_at=5 * HOUR), RunningVm("soon", 2, 256, 2 * HOUR)]
    hosts_at_1h = [host("late", cores=4, used_cores=4), host("soon", cores=4, used_cores=2)]
    pending = [
        vm("top", cpus=4, walltime_s=HOUR),
        vm("long", cpus=2, walltime_s=3 * HOUR),
        vm("short", cpus=2, walltime_s=HOUR // 2),
    ]
    assert place(pending, hosts, now=0, running=running).placements == {}
    decision = place(pending, hosts_at_1h, now=HOUR, running=later)
    assert decision.placements == {"short": "soon"}
    assert "kept free for a higher-priority VM (backfill)" in decision.reasons["long"]


def test_live_fair_share_divides_freed_cores_by_the_shares() -> None:
    pending = [vm(f"a{i}", group="a", walltime_s=HOUR) for i in range(20)] + [
        vm(f"b{i}", group="b", walltime_s=HOUR) for i in range(20)
    ]
    hosts = [host("h", cores=12, mem=64 * 1024)]
    usage = {"a": 100.0, "b": 100.0}
    static = place(pending, hosts, priorities={v.vm_id: 1.0 for v in pending})
    assert Counter(v[0] for v in static.placements) == {"a": 12}  # all to the first
    live = place(pending, hosts, fairshare=FairShareInputs({"a": 2, "b": 1}, usage))
    assert Counter(v[0] for v in live.placements) == {"a": 8, "b": 4}


def test_running_vms_count_as_committed_usage_in_the_ranking() -> None:
    # b has no decayed usage yet but already holds 4 cores for 10 h: a goes first.
    running = [RunningVm("h", 4, 1024, ends_at=10 * HOUR, group="b")]
    pending = [vm("b-next", group="b"), vm("a-next", group="a")]
    decision = place(
        pending,
        [host("h", cores=5, used_cores=4)],
        running=running,
        fairshare=FairShareInputs({"a": 1, "b": 1}, {}),
    )
    assert decision.placements == {"a-next": "h"}


def test_overlapping_reservations_take_different_cores() -> None:
    both = [
        Reservation("ra", group="a", cores=8, start=0, end=4 * HOUR),
        Reservation("rb", group="b", cores=8, start=0, end=4 * HOUR),
    ]
    hosts = [host("h0", cores=8), host("h1", cores=8), host("h2", cores=8)]
    pending = [vm("a1", cpus=8, group="a"), vm("b1", cpus=8, group="b"), vm("c1", group="c")]
    # Deterministic choice among equal hosts (top_k=1): lowest index first.
    decision = place(pending, hosts, now=HOUR, reservations=both, policy=Policy(top_k=1))
    assert decision.placements == {"a1": "h0", "b1": "h1", "c1": "h2"}


def test_a_waiting_gang_keeps_no_host_idle() -> None:
    hosts = [host("x", cores=8), host("y", cores=8, used_cores=7)]
    running = [RunningVm("y", 7, 256, ends_at=2 * HOUR)]
    gang = [vm(f"g{i}", cpus=8, deployment="d", gang=True) for i in range(2)]
    decision = place([*gang, vm("job", cpus=8, walltime_s=HOUR)], hosts, running=running)
    assert decision.placements == {"job": "x"}
