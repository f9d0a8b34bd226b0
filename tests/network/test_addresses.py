from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv4Network

import pytest

from gridvm.common.errors import Conflict, InvalidInput
from gridvm.network.addresses import allocate, check_mac_unique, gateway_of, mac_for

SUBNET = IPv4Network("10.77.0.0/24")


def test_gateway_is_dot_one_and_vms_start_at_dot_two() -> None:
    assert gateway_of(SUBNET) == IPv4Address("10.77.0.1")
    assert allocate(SUBNET, []) == IPv4Address("10.77.0.2")


def test_addresses_in_use_are_not_handed_out_again() -> None:
    in_use = [IPv4Address("10.77.0.2"), IPv4Address("10.77.0.4")]
    assert allocate(SUBNET, in_use) == IPv4Address("10.77.0.3")
    assert allocate(SUBNET, [*in_use, IPv4Address("10.77.0.3")]) == IPv4Address("10.77.0.5")


def test_a_full_subnet_is_a_conflict_and_never_gives_the_broadcast_address() -> None:
    small = IPv4Network("10.9.0.0/29")  # .1 gateway, .2-.6 VMs, .7 broadcast
    in_use = [IPv4Address(f"10.9.0.{i}") for i in range(2, 7)]
    with pytest.raises(Conflict, match=re.escape("no free address left in 10.9.0.0/29")):
        allocate(small, in_use)


def test_a_subnet_too_small_for_vms_is_refused() -> None:
    with pytest.raises(InvalidInput, match="too small"):
        allocate(IPv4Network("10.9.0.0/30"), [])


def test_mac_is_stable_and_is_the_one_the_agent_gives_qemu() -> None:
    from gridvm.agent import machines

    assert mac_for("vm-123") == mac_for("vm-123") == machines.mac_for("vm-123")
    assert mac_for("vm-123") != mac_for("vm-124")
    assert mac_for("vm-123").startswith("52:54:00:")


def test_a_mac_clash_on_one_bridge_is_reported() -> None:
    assert check_mac_unique("vm-1", {"vm-2": mac_for("vm-2")}) == mac_for("vm-1")
    with pytest.raises(Conflict, match="same MAC address"):
        check_mac_unique("vm-1", {"vm-2": mac_for("vm-1")})
