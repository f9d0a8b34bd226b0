"""The host's zone bridges and VM taps, made and removed with ``ip`` (I/O).

Why the ``ip`` command and not a netlink library: pyroute2 is not in the
project's lock, and these are a handful of idempotent calls per VM start or
end; ``ip`` (iproute2) is already a system dependency of the network layer
(see scripts/install-system-deps.sh). Every call is an argv list (no shell);
names are checked by :mod:`gridvm.network.ruleset` rules before they get here.
A ``prefix`` runs the commands somewhere else, e.g. ``("ip", "netns", "exec",
NAME)`` in tests, as :class:`gridvm.network.nft.Nft` does.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
from collections.abc import Sequence

from gridvm.common.errors import InvalidInput, ToolFailed
from gridvm.network.ruleset import TAP_PREFIX
from gridvm.network.tools import call_tool

# The routing protocol number gridvm's host routes to VM-to-VM peers on other hosts carry,
# so the agent finds its own routes again (after a restart too) and touches no other.
ROUTE_PROTO = "223"


class Links:
    def __init__(self, prefix: Sequence[str] = (), timeout: float = 30.0) -> None:
        self._prefix = list(prefix)
        self._timeout = timeout

    # --- host set-up ------------------------------------------------------------
    def ensure_bridge(self, name: str, gateway: ipaddress.IPv4Interface) -> None:
        """The bridge ``name`` exists, is up and holds ``gateway`` (address/prefix), and only it."""
        if not self.exists(name):
            self._ip(["link", "add", "name", name, "type", "bridge"], f"create bridge {name}")
        for other in self._addresses(name):
            if other != gateway:
                self._ip(["addr", "del", str(other), "dev", name], f"drop {other} from {name}")
        if gateway not in self._addresses(name):
            self._ip(["addr", "add", str(gateway), "dev", name], f"address {name}")
        self._ip(["link", "set", "dev", name, "up"], f"bring {name} up")

    def enable_forwarding(self) -> None:
        """IPv4 forwarding on (the VMs' traffic is routed and masqueraded by the host)."""
        self._run(["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"], "enable IPv4 forwarding")

    def default_uplink(self) -> str:
        """The interface of the host's IPv4 default route."""
        out = self._ip(["-j", "-4", "route", "show", "default"], "read the default route")
        for route in json.loads(out or "[]"):
            dev = route.get("dev")
            if isinstance(dev, str) and dev:
                return dev
        raise InvalidInput(
            "this host has no IPv4 default route to masquerade VM traffic through",
            hint="give the uplink interface with gridvm agent --uplink",
        )

    def address_of(self, name: str) -> ipaddress.IPv4Address | None:
        """The first IPv4 address of the interface ``name`` (None: it has none)."""
        found = self._addresses(name)
        return found[0].ip if found else None

    # --- routes to VM-to-VM peers on other hosts ---------------------------------------
    def peer_routes(self) -> dict[ipaddress.IPv4Address, ipaddress.IPv4Address]:
        """gridvm's host routes: peer address -> next hop (the peer's host)."""
        out = self._ip(
            ["-j", "-4", "route", "show", "proto", ROUTE_PROTO], "list the routes to VM peers"
        )
        routes: dict[ipaddress.IPv4Address, ipaddress.IPv4Address] = {}
        for route in json.loads(out or "[]"):
            dst, gateway = route.get("dst"), route.get("gateway")
            if isinstance(dst, str) and isinstance(gateway, str):
                routes[ipaddress.IPv4Address(dst.removesuffix("/32"))] = ipaddress.IPv4Address(
                    gateway
                )
        return routes

    def set_peer_route(self, address: ipaddress.IPv4Address, via: ipaddress.IPv4Address) -> None:
        """``address``/32 goes through ``via`` (the peer's host on the site network)."""
        self._ip(
            ["route", "replace", f"{address}/32", "via", str(via), "proto", ROUTE_PROTO],
            f"route {address} via {via}",
        )

    def drop_peer_route(self, address: ipaddress.IPv4Address) -> None:
        self._ip(
            ["route", "del", f"{address}/32", "proto", ROUTE_PROTO],
            f"remove the route to {address}",
        )

    # --- per VM -------------------------------------------------------------------
    def ensure_tap(self, name: str, bridge: str) -> None:
        """A persistent tap ``name`` (kept when QEMU closes it), up, on ``bridge``."""
        if not name.startswith(TAP_PREFIX):
            raise InvalidInput(f"tap {name!r} does not start with {TAP_PREFIX!r}")
        if not self.exists(name):
            self._ip(["tuntap", "add", "dev", name, "mode", "tap"], f"create tap {name}")
        self._ip(["link", "set", "dev", name, "master", bridge], f"put {name} on {bridge}")
        self._ip(["link", "set", "dev", name, "up"], f"bring {name} up")

    def remove(self, name: str) -> None:
        """Remove the interface ``name``; fine if it is gone."""
        if self.exists(name):
            self._ip(["link", "del", "dev", name], f"remove {name}")

    def taps(self) -> list[str]:
        """The gridvm taps on this host (names starting with the tap prefix)."""
        out = self._ip(["-j", "link", "show"], "list links")
        names = [str(link.get("ifname", "")) for link in json.loads(out or "[]")]
        return sorted(n for n in names if n.startswith(TAP_PREFIX))

    def exists(self, name: str) -> bool:
        proc = self._call(["ip", "link", "show", "dev", name])
        return proc.returncode == 0

    # --- plumbing -------------------------------------------------------------------
    def _addresses(self, name: str) -> list[ipaddress.IPv4Interface]:
        out = self._ip(["-j", "-4", "addr", "show", "dev", name], f"read addresses of {name}")
        return [
            ipaddress.IPv4Interface(f"{a['local']}/{a['prefixlen']}")
            for link in json.loads(out or "[]")
            for a in link.get("addr_info", [])
        ]

    def _ip(self, args: list[str], what: str) -> str:
        return self._run(["ip", *args], what)

    def _run(self, argv: list[str], what: str) -> str:
        proc = self._call(argv)
        if proc.returncode != 0:
            message = proc.stderr.strip() or f"exit status {proc.returncode}"
            raise ToolFailed(f"could not {what}: {message}")
        return proc.stdout

    def _call(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        return call_tool([*self._prefix, *argv], self._timeout)
