"""The agent's network plan (pure): zones, addresses, and the host state rendered from records."""

from __future__ import annotations

import ipaddress

import pytest

from gridvm.agent.network import (
    choose_address,
    host_network,
    static_address,
    tap_name,
    usable_peers,
    zone_of,
    zone_setups,
)
from gridvm.agent.records import VmRecord
from gridvm.common.config import DEFAULT_ZONE_SUBNETS
from gridvm.common.errors import Conflict, InvalidInput
from gridvm.network.addresses import mac_for
from gridvm.network.ruleset import TAP_PREFIX, render
from gridvm.schemas.agent import Assignment, LocalState, RemotePeer
from gridvm.schemas.hosts import Zone
from tests.agent.helpers import assignment, record

ZONES = zone_setups(("trusted", "dmz"), DEFAULT_ZONE_SUBNETS)


def vm(
    vm_id: str,
    ipv4: str | None,
    state: LocalState = LocalState.running,
    zone: Zone | None = None,
    egress: tuple[str, ...] = (),
) -> VmRecord:
    a: Assignment = assignment(vm_id).model_copy(update={"zone": zone, "egress": list(egress)})
    r = record(a, state)
    r.ipv4 = ipv4
    return r


def test_default_zone_subnets_give_each_bridge_its_gateway() -> None:
    by_name = {z.name: z for z in ZONES}
    assert (str(by_name["trusted"].subnet), str(by_name["trusted"].gateway)) == (
        "10.64.0.0/24",
        "10.64.0.1",
    )
    assert (by_name["dmz"].bridge, str(by_name["dmz"].gateway)) == ("gvbr-dmz", "10.65.0.1")


@pytest.mark.parametrize(
    ("subnets", "message"),
    [
        ({"trusted": "10.64.0.0/24"}, "zone dmz has no subnet"),
        ({"trusted": "10.64.0.1/24", "dmz": "10.65.0.0/24"}, "not an IPv4 network"),
        ({"trusted": "fd00::/64", "dmz": "10.65.0.0/24"}, "not an IPv4 network"),
        ({"trusted": "8.8.8.0/24", "dmz": "10.65.0.0/24"}, "not a private range"),
        ({"trusted": "10.64.0.0/30", "dmz": "10.65.0.0/24"}, "too small"),
        ({"trusted": "10.64.0.0/16", "dmz": "10.64.1.0/24"}, "overlap"),
    ],
)
def test_bad_zone_subnets_are_refused_with_a_reason(subnets: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        zone_setups(("trusted", "dmz"), subnets)


def test_tap_names_are_stable_short_and_carry_the_prefix() -> None:
    tap = tap_name("vm-0a1b2c3d4e5f")
    assert tap == tap_name("vm-0a1b2c3d4e5f") != tap_name("vm-0a1b2c3d4e60")
    assert tap.startswith(TAP_PREFIX) and len(tap) <= 15


def test_the_vm_zone_is_the_servers_choice_or_trusted() -> None:
    assert zone_of(assignment("a").model_copy(update={"zone": Zone.dmz}), ZONES).name == "dmz"
    assert zone_of(assignment("a"), ZONES).name == "trusted"
    only_dmz = zone_setups(("dmz",), DEFAULT_ZONE_SUBNETS)
    assert zone_of(assignment("a"), only_dmz).name == "dmz"
    with pytest.raises(InvalidInput, match="this host serves dmz"):
        zone_of(assignment("a").model_copy(update={"zone": Zone.trusted}), only_dmz)


def test_addresses_are_the_lowest_free_and_a_vm_keeps_its_own() -> None:
    trusted = ZONES[0]
    others = [vm("a", "10.64.0.2"), vm("b", "10.64.0.4"), vm("c", "10.64.0.3", LocalState.ended)]
    # c has ended: its address is free again.
    assert str(choose_address(trusted, "new", None, others)) == "10.64.0.3"
    assert str(choose_address(trusted, "new", "10.64.0.9", others)) == "10.64.0.9"
    # Taken meanwhile, or from another subnet: a fresh one.
    assert str(choose_address(trusted, "new", "10.64.0.4", others)) == "10.64.0.3"
    assert str(choose_address(trusted, "new", "10.65.0.7", others)) == "10.64.0.3"


def test_a_full_zone_says_so() -> None:
    small = zone_setups(("trusted",), {"trusted": "10.64.0.0/29"})[0]
    full = [vm(f"v{i}", f"10.64.0.{i}") for i in range(2, 7)]
    with pytest.raises(Conflict, match=r"no free address left in 10\.64\.0\.0/29"):
        choose_address(small, "new", None, full)


def test_the_host_state_holds_exactly_the_vms_with_a_tap() -> None:
    records = [
        vm("run", "10.64.0.2", egress=("192.0.2.10:443",)),
        vm("dmzvm", "10.65.0.2", zone=Zone.dmz),
        vm("stage", "10.64.0.3", LocalState.staging),
        vm("gone", "10.64.0.4", LocalState.ended),
        vm("stopped", "10.64.0.5", LocalState.stopped),
        vm("user-mode", None),
    ]
    host = host_network("eth0", ZONES, records, {"trusted": ["192.0.2.53:53/udp"]})
    assert [(v.vm_id, str(v.ipv4), v.zone) for v in host.vms] == [
        ("dmzvm", "10.65.0.2", "dmz"),
        ("run", "10.64.0.2", "trusted"),
        ("stage", "10.64.0.3", "trusted"),
    ]
    run = host.vms[1]
    assert (run.tap, run.mac) == (tap_name("run"), mac_for("run"))
    assert [str(r) for r in run.egress] == ["192.0.2.10:443"]
    trusted = next(z for z in host.zones if z.name == "trusted")
    assert [str(r) for r in trusted.site_whitelist] == ["192.0.2.53:53/udp"]
    script = render(host)
    assert f'"{tap_name("run")}" : jump from-{tap_name("run")}' in script
    assert "ip daddr 192.0.2.10 tcp dport 443 accept" in script
    assert tap_name("gone") not in script and tap_name("stopped") not in script


def test_the_guest_is_told_its_address_and_the_host_as_gateway_and_dns() -> None:
    static = static_address(ZONES[0], "10.64.0.7")
    assert static.interface == ipaddress.IPv4Interface("10.64.0.7/24")
    assert static.gateway == static.nameservers[0] == ipaddress.IPv4Address("10.64.0.1")


def test_a_vm_whose_zone_this_host_no_longer_serves_is_left_out_not_fatal() -> None:
    only_dmz = zone_setups(("dmz",), DEFAULT_ZONE_SUBNETS)
    records = [vm("lost", "10.64.0.2", zone=Zone.trusted), vm("ok", "10.65.0.2", zone=Zone.dmz)]
    host = host_network("eth0", only_dmz, records, {})
    assert [v.vm_id for v in host.vms] == ["ok"]


def test_vms_of_one_deployment_that_asked_may_connect_to_each_other() -> None:
    def member(vm_id: str, ipv4: str, deployment: str, asked: bool) -> VmRecord:
        r = vm(vm_id, ipv4)
        r.assignment = r.assignment.model_copy(
            update={"deployment_id": deployment, "vm_to_vm": asked}
        )
        return r

    records = [
        member("a", "10.64.0.2", "dep-1", True),
        member("b", "10.64.0.3", "dep-1", True),
        member("c", "10.64.0.4", "dep-1", False),
        member("d", "10.64.0.5", "dep-2", True),
    ]
    script = render(host_network("eth0", ZONES, records, {}))
    assert "ip saddr . ip daddr { 10.64.0.2 . 10.64.0.3, 10.64.0.3 . 10.64.0.2 } accept" in script
    assert "10.64.0.4 ." not in script and "10.64.0.5 ." not in script


def test_a_remote_peer_in_a_zone_subnet_of_this_host_is_left_out_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    peers = [
        RemotePeer(address="10.64.2.2", via="192.0.2.2"),
        RemotePeer(address="10.64.0.7", via="192.0.2.3"),  # overlaps this host's trusted zone
        RemotePeer(address="not-an-address", via="192.0.2.3"),
    ]
    usable = usable_peers("vm-a", peers, ZONES)
    assert [(str(a), str(v)) for a, v in usable] == [("10.64.2.2", "192.0.2.2")]
    assert "cannot reach its peer 10.64.0.7" in caplog.text
    assert "subnet 10.64.0.0/24 of this host" in caplog.text


def test_remote_peers_reach_the_rules_of_their_vm_only() -> None:
    a = vm("a", "10.64.0.2")
    a.assignment = a.assignment.model_copy(update={"deployment_id": "dep-1", "vm_to_vm": True})
    b = vm("b", "10.64.0.3")
    routes = {"a": usable_peers("a", [RemotePeer(address="10.64.2.2", via="192.0.2.2")], ZONES)}
    script = render(host_network("up0", ZONES, [a, b], {}, routes))
    assert 'oifname "up0" ip daddr 10.64.2.2 accept' in script
    assert "ip saddr . ip daddr { 10.64.2.2 . 10.64.0.2 } accept" in script
    assert "10.64.0.3 . 10.64.2.2" not in script
