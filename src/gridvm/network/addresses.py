"""Addresses on one host's zone subnet, and the VM's MAC (pure).

The gateway (the host's address on the zone bridge) is the first usable
address of the subnet (``.1`` of a /24); VMs get the lowest address from the
second one on that no other VM on that host and zone holds. The MAC comes
from the VM id alone, so a VM keeps it across restarts and agent restarts.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable

from gridvm.common.errors import Conflict, InvalidInput


def mac_for(vm_id: str) -> str:
    """A stable, locally administered unicast MAC for the VM's NIC (QEMU's 52:54:00 prefix)."""
    digest = hashlib.sha256(vm_id.encode()).digest()
    return "52:54:00:" + ":".join(f"{b:02x}" for b in digest[:3])


def gateway_of(subnet: ipaddress.IPv4Network) -> ipaddress.IPv4Address:
    """The host's address on the zone bridge: the subnet's first usable address."""
    _check_subnet(subnet)
    return subnet.network_address + 1


def allocate(
    subnet: ipaddress.IPv4Network, in_use: Iterable[ipaddress.IPv4Address]
) -> ipaddress.IPv4Address:
    """The lowest free VM address of ``subnet``; raises Conflict when none is left."""
    _check_subnet(subnet)
    taken = set(in_use)
    first = int(subnet.network_address) + 2
    last = int(subnet.broadcast_address) - 1
    for value in range(first, last + 1):
        candidate = ipaddress.IPv4Address(value)
        if candidate not in taken:
            return candidate
    raise Conflict(
        f"no free address left in {subnet}: all {last - first + 1} VM addresses are in use",
        hint="give this zone a larger subnet on this host, or run fewer VMs on it",
    )


def check_mac_unique(vm_id: str, others: dict[str, str]) -> str:
    """``vm_id``'s MAC; Conflict if another VM (``others``: id -> MAC) on the bridge has it."""
    mac = mac_for(vm_id)
    for other_id, other_mac in sorted(others.items()):
        if other_id != vm_id and other_mac == mac:
            raise Conflict(
                f"VM {vm_id} and VM {other_id} would have the same MAC address {mac}",
                hint="run one of them on another host",
            )
    return mac


def _check_subnet(subnet: ipaddress.IPv4Network) -> None:
    if subnet.prefixlen > 29:
        raise InvalidInput(
            f"zone subnet {subnet} is too small: a /{subnet.prefixlen} leaves no room for VMs",
            hint="use a /29 or larger (a /24 gives 253 VMs)",
        )
