"""Egress whitelists on the server: a VM's entries checked and resolved at request time,
and the site's per-zone whitelists (site networking, see gridvm.network.whitelist).

Names are resolved here, once, when the VM is requested: the agents get addresses only,
and the rules do not follow later DNS changes (``gridvm vm show`` lists what was taken).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping, Sequence

from gridvm.common.config import SiteLimits
from gridvm.common.errors import InvalidInput
from gridvm.network.whitelist import (
    Resolver,
    WhitelistPolicy,
    parse_entries,
    resolve_entries,
)

ZONES = ("trusted", "dmz")


def policy_of(limits: SiteLimits) -> WhitelistPolicy:
    return WhitelistPolicy(allow_wide=limits.egress_allow_wide)


def resolve_name(name: str) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses of ``name`` (empty if it does not resolve)."""
    try:
        infos = socket.getaddrinfo(name, None, family=socket.AF_INET, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return []
    return sorted({ipaddress.IPv4Address(info[4][0]) for info in infos})


def vm_egress(
    entries: Sequence[str], limits: SiteLimits, resolve: Resolver = resolve_name
) -> list[str]:
    """A request's ``allow_egress`` as canonical entries (names resolved); InvalidInput says
    which entry is wrong and why."""
    if len(entries) > limits.max_egress_entries:
        raise InvalidInput(
            f"{len(entries)} egress entries; this site allows at most {limits.max_egress_entries}",
            hint="use a CIDR for neighbouring addresses",
        )
    return [str(rule) for rule in resolve_entries(list(entries), resolve, policy_of(limits))]


def check_zone_egress(zone_egress: Mapping[str, Sequence[str]]) -> dict[str, tuple[str, ...]]:
    """The site's per-zone whitelists, checked (the site may list any width) and canonical."""
    out: dict[str, tuple[str, ...]] = {}
    for zone, entries in zone_egress.items():
        if zone not in ZONES:
            raise InvalidInput(f"zone egress for {zone!r}: the zones are trusted and dmz")
        rules = parse_entries(list(entries), WhitelistPolicy(allow_wide=True))
        out[zone] = tuple(str(r) for r in rules)
    return out
