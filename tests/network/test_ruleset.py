"""Golden tests for the gridvm nftables rule set.

Regenerate the golden files after an intended change with
``GRIDVM_UPDATE_GOLDEN=1 .venv/bin/pytest tests/network/test_ruleset.py``
and review the diff of tests/network/golden/*.nft like any security change.
"""

from __future__ import annotations

import os
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from gridvm.common.errors import InvalidInput
from gridvm.network.ruleset import (
    HostNetwork,
    HostServices,
    VmNet,
    Zone,
    peers_of,
    remote_pairs,
    render,
)
from gridvm.network.whitelist import parse_entries

GOLDEN_DIR = Path(__file__).parent / "golden"

TRUSTED = Zone(
    name="trusted",
    bridge="gvbr-trusted",
    subnet=IPv4Network("10.77.0.0/24"),
    gateway=IPv4Address("10.77.0.1"),
    site_whitelist=parse_entries(["192.0.2.0/24:443", "192.0.2.53:53/udp"]),
)
DMZ = Zone(
    name="dmz",
    bridge="gvbr-dmz",
    subnet=IPv4Network("10.78.0.0/24"),
    gateway=IPv4Address("10.78.0.1"),
    services=HostServices(dns=False, dhcp=False),
)


def vm(
    name: str,
    ip: str,
    zone: str = "trusted",
    deployment: str = "dep-1",
    egress: tuple[str, ...] = (),
    vm_to_vm: bool = False,
    remote: tuple[str, ...] = (),
) -> VmNet:
    return VmNet(
        vm_id=f"vm-{name}",
        tap=f"gvt-{name}",
        mac="52:54:00:" + ":".join(f"{b:02x}" for b in IPv4Address(ip).packed[1:]),
        ipv4=IPv4Address(ip),
        zone=zone,
        deployment_id=deployment,
        egress=parse_entries(list(egress)),
        vm_to_vm=vm_to_vm,
        remote_peers=tuple(IPv4Address(r) for r in remote),
    )


GOLDEN_HOSTS: dict[str, HostNetwork] = {
    "no_vms": HostNetwork(uplink="eth0", zones=(TRUSTED, DMZ)),
    "two_zones_two_deployments": HostNetwork(
        uplink="eth0",
        zones=(TRUSTED, DMZ),
        vms=(
            vm("a1", "10.77.0.2", deployment="dep-a"),
            vm("a2", "10.77.0.3", deployment="dep-a"),
            vm("b1", "10.78.0.2", zone="dmz", deployment="dep-b"),
        ),
    ),
    "vm_to_vm_asked": HostNetwork(
        uplink="eth0",
        zones=(TRUSTED,),
        vms=(
            vm("a1", "10.77.0.2", deployment="dep-a", vm_to_vm=True),
            vm("a2", "10.77.0.3", deployment="dep-a", vm_to_vm=True),
            vm("a3", "10.77.0.4", deployment="dep-a", vm_to_vm=False),
            vm("b1", "10.77.0.5", deployment="dep-b", vm_to_vm=True),
        ),
    ),
    # dep-a: a1 and a2 here, two members on another host (10.79.0.0/24); dep-b did not ask
    # (its remote list is ignored); dep-c: one member here, one elsewhere.
    "vm_to_vm_across_hosts": HostNetwork(
        uplink="up0",
        zones=(TRUSTED,),
        vms=(
            vm("a1", "10.77.0.2", deployment="dep-a", vm_to_vm=True, remote=("10.79.0.2",)),
            vm(
                "a2",
                "10.77.0.3",
                deployment="dep-a",
                vm_to_vm=True,
                remote=("10.79.0.3", "10.79.0.2"),
            ),
            vm("b1", "10.77.0.4", deployment="dep-b", remote=("10.79.0.4",)),
            vm("c1", "10.77.0.5", deployment="dep-c", vm_to_vm=True, remote=("10.80.0.2",)),
        ),
    ),
    "vm_to_vm_one_remote_pair": HostNetwork(
        uplink="up0",
        zones=(TRUSTED,),
        vms=(vm("a1", "10.77.0.2", deployment="dep-a", vm_to_vm=True, remote=("10.79.0.2",)),),
    ),
    "whitelists_and_dhcp": HostNetwork(
        uplink="uplink0",
        zones=(replace(TRUSTED, services=HostServices(dns=True, dhcp=True)),),
        vms=(
            vm(
                "w1",
                "10.77.0.9",
                egress=("198.51.100.7:80", "198.51.100.0/28:8443", "203.0.113.5:123/udp"),
            ),
        ),
    ),
}


@pytest.mark.parametrize("name", sorted(GOLDEN_HOSTS))
def test_ruleset_matches_golden(name: str) -> None:
    text = render(GOLDEN_HOSTS[name])
    golden = GOLDEN_DIR / f"{name}.nft"
    if os.environ.get("GRIDVM_UPDATE_GOLDEN") == "1":
        golden.write_text(text, encoding="utf-8")
    assert golden.exists(), f"no golden file {golden}: run with GRIDVM_UPDATE_GOLDEN=1"
    assert text == golden.read_text(encoding="utf-8")


def test_each_table_is_deleted_and_recreated_in_the_same_script() -> None:
    lines = render(GOLDEN_HOSTS["no_vms"]).splitlines()
    for family in ("bridge", "inet"):
        at = lines.index(f"table {family} gridvm")
        assert lines[at + 1] == f"delete table {family} gridvm"
        assert lines[at + 2] == f"table {family} gridvm {{"


def test_rendering_does_not_depend_on_the_order_of_the_input() -> None:
    host = GOLDEN_HOSTS["two_zones_two_deployments"]
    shuffled = HostNetwork(host.uplink, tuple(reversed(host.zones)), tuple(reversed(host.vms)))
    assert render(shuffled) == render(host)


def test_vm_to_vm_needs_same_deployment_and_both_asking() -> None:
    vms = GOLDEN_HOSTS["vm_to_vm_asked"].vms
    by_id = {v.vm_id: v for v in vms}
    assert [p.vm_id for p in peers_of(by_id["vm-a1"], vms)] == ["vm-a2"]
    assert peers_of(by_id["vm-a3"], vms) == []
    assert peers_of(by_id["vm-b1"], vms) == []


def test_remote_peers_count_only_for_vms_that_asked() -> None:
    vms = GOLDEN_HOSTS["vm_to_vm_across_hosts"].vms
    assert [(str(local), str(remote)) for local, remote in remote_pairs(vms)] == [
        ("10.77.0.2", "10.79.0.2"),
        ("10.77.0.3", "10.79.0.2"),
        ("10.77.0.3", "10.79.0.3"),
        ("10.77.0.5", "10.80.0.2"),
    ]


def _chain(text: str, name: str) -> str:
    return text.split(f"chain {name} {{")[1].split("\n\t}")[0]


def test_a_vm_reaches_its_remote_peers_through_the_uplink_and_no_other_address() -> None:
    text = render(GOLDEN_HOSTS["vm_to_vm_across_hosts"])
    a2 = _chain(text, "to-gvt-a2")
    assert 'oifname "up0" ip daddr { 10.79.0.2, 10.79.0.3 } accept' in a2
    assert "10.79.0.4" not in text  # b1 did not ask: its peer list opens nothing
    assert "10.79" not in _chain(text, "to-gvt-b1")
    assert "10.79" not in _chain(text, "to-gvt-c1")


def test_inbound_from_the_uplink_is_open_only_for_the_exact_peer_pairs() -> None:
    inet = render(GOLDEN_HOSTS["vm_to_vm_across_hosts"]).split("table inet gridvm {")[1]
    forward = _chain(inet, "forward")
    pairs = (
        "{ 10.79.0.2 . 10.77.0.2, 10.79.0.2 . 10.77.0.3, 10.79.0.3 . 10.77.0.3, "
        "10.80.0.2 . 10.77.0.5 }"
    )
    assert f'iifname "up0" oifname "gvbr-trusted" ip saddr . ip daddr {pairs} accept' in forward
    assert forward.index(pairs) < forward.index("no new connections to VMs")


def test_traffic_to_remote_peers_is_not_masqueraded_and_the_rest_still_is() -> None:
    nat = render(GOLDEN_HOSTS["vm_to_vm_one_remote_pair"]).split("chain postrouting {")[1]
    keep = 'oifname "up0" ip saddr . ip daddr { 10.77.0.2 . 10.79.0.2 } accept'
    masquerade = 'oifname "up0" ip saddr 10.77.0.0/24 masquerade'
    assert nat.index(keep) < nat.index(masquerade)
    plain = render(GOLDEN_HOSTS["vm_to_vm_asked"]).split("chain postrouting {")[1]
    assert "accept" not in plain.replace("policy accept", "")


def test_a_remote_peer_inside_a_local_zone_subnet_is_refused() -> None:
    clash = vm("a1", "10.77.0.2", deployment="dep-a", vm_to_vm=True, remote=("10.77.0.9",))
    with pytest.raises(InvalidInput, match="cannot be routed"):
        render(HostNetwork("up0", (TRUSTED,), (clash,)))


def test_whitelist_entries_come_after_the_no_other_vms_rule() -> None:
    # A site whitelist covering the VM subnets must not open VM-to-VM traffic.
    wide = replace(TRUSTED, site_whitelist=parse_entries(["10.0.0.0/8:22"]))
    text = render(HostNetwork("eth0", (wide,), (vm("a1", "10.77.0.2"), vm("b1", "10.77.0.3"))))
    chain = text.split("chain to-gvt-a1 {")[1].split("}")[0]
    assert chain.index("no other VMs") < chain.index("ip daddr 10.0.0.0/8 tcp dport 22 accept")


BAD_HOSTS: list[tuple[HostNetwork, str]] = [
    (HostNetwork("eth0", (TRUSTED,), (vm("x", "10.78.0.2"),)), "not a VM address of 10.77.0.0/24"),
    (HostNetwork("eth0", (TRUSTED,), (vm("x", "10.77.0.1"),)), "not a VM address"),
    (HostNetwork("eth0", (TRUSTED,), (vm("x", "10.77.0.2", zone="dmz"),)), "does not have"),
    (
        HostNetwork("eth0", (TRUSTED,), (vm("x", "10.77.0.2"), vm("y", "10.77.0.2"))),
        "used twice",
    ),
    (HostNetwork("eth0; drop", (TRUSTED,)), "not a valid interface name"),
    (HostNetwork("eth0", (TRUSTED, TRUSTED)), "listed twice"),
    (
        HostNetwork(
            "eth0",
            (TRUSTED,),
            (VmNet("vm-x", "tap0", "52:54:00:00:00:01", IPv4Address("10.77.0.2"), "trusted", "d"),),
        ),
        "does not start with 'gvt'",
    ),
    (
        HostNetwork(
            "eth0",
            (TRUSTED,),
            (
                VmNet(
                    "vm-x", "gvt-x", "52:54:00:00:00:XX", IPv4Address("10.77.0.2"), "trusted", "d"
                ),
            ),
        ),
        "is not six lower-case hex pairs",
    ),
]


@pytest.mark.parametrize(("host", "message"), BAD_HOSTS)
def test_a_state_that_cannot_be_rendered_is_refused_clearly(
    host: HostNetwork, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        render(host)
