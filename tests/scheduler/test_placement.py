from __future__ import annotations

from gridvm.scheduler import HostSnapshot, VmDemand, place


def vm(
    vm_id: str, cpus: int = 1, mem: int = 256, image: str = "sha256:a", **kw: object
) -> VmDemand:
    return VmDemand(vm_id=vm_id, vcpus=cpus, memory_mb=mem, image_digest=image, **kw)  # type: ignore[arg-type]


def test_places_on_the_host_with_room() -> None:
    hosts = [
        HostSnapshot("small", cores=1, memory_mb=512),
        HostSnapshot("big", cores=8, memory_mb=8192),
    ]
    decision = place([vm("v1", cpus=4)], hosts)
    assert decision.placements == {"v1": "big"}
    assert decision.reasons == {}


def test_prefers_a_host_that_caches_the_image() -> None:
    hosts = [
        HostSnapshot("empty", cores=8, memory_mb=8192),
        HostSnapshot("cached", cores=4, memory_mb=4096, cached_images=frozenset({"sha256:a"})),
    ]
    assert place([vm("v1")], hosts).placements == {"v1": "cached"}


def test_a_burst_of_one_image_fills_the_host_that_got_it_first() -> None:
    hosts = [
        HostSnapshot("h1", cores=4, memory_mb=4096),
        HostSnapshot("h2", cores=4, memory_mb=4096),
    ]
    decision = place([vm(f"v{i}") for i in range(6)], hosts)
    counts: dict[str, int] = {}
    for host in decision.placements.values():
        counts[host] = counts.get(host, 0) + 1
    # The first host to receive the image is filled before the second downloads it too.
    assert sorted(counts.values()) == [2, 4]


def test_capacity_is_used_up_within_one_pass() -> None:
    hosts = [HostSnapshot("h", cores=2, memory_mb=4096, used_cores=1)]
    decision = place([vm("v1"), vm("v2")], hosts)
    assert decision.placements == {"v1": "h"}
    assert "short of free cores" in decision.reasons["v2"]


def test_reason_counts_each_cause() -> None:
    hosts = [
        HostSnapshot("a", cores=2, memory_mb=1024, enabled=False),
        HostSnapshot("b", cores=2, memory_mb=1024, online=False),
        HostSnapshot("c", cores=2, memory_mb=128),
        HostSnapshot("d", cores=2, memory_mb=128),
    ]
    reason = place([vm("v1", mem=512)], hosts).reasons["v1"]
    assert reason.startswith("no host can take 1 vCPU and 512 MiB now:")
    assert "2 hosts are short of free memory" in reason
    assert "1 host is disabled (draining)" in reason
    assert "1 host is offline" in reason


def test_no_hosts_at_all_says_so() -> None:
    reason = place([vm("v1")], []).reasons["v1"]
    assert "no host is registered" in reason


def test_pinned_vm_only_goes_to_its_host() -> None:
    hosts = [HostSnapshot("a", cores=8, memory_mb=8192), HostSnapshot("b", cores=1, memory_mb=512)]
    assert place([vm("v1", pinned_host="b")], hosts).placements == {"v1": "b"}
    full = [
        HostSnapshot("a", cores=8, memory_mb=8192),
        HostSnapshot("b", cores=1, memory_mb=512, used_cores=1),
    ]
    decision = place([vm("v1", pinned_host="b")], full)
    assert decision.placements == {}
    assert "1 host is not the host holding its disk" in decision.reasons["v1"]


def test_order_is_respected_first_come_first_served() -> None:
    hosts = [HostSnapshot("h", cores=2, memory_mb=4096)]
    decision = place([vm("old", cpus=2), vm("new", cpus=1)], hosts)
    assert decision.placements == {"old": "h"}
