"""Site networking on this host: zone bridges, one tap per VM, and the agent's nftables tables.

The rule set is always rendered whole from the VM records (:func:`host_network`, pure)
and applied in one nft transaction that deletes and re-creates the gridvm tables, so
there is never a moment without rules. The order around a VM:

- start: address (kept in its record) -> tap on its zone bridge -> rules -> QEMU;
- end (or a failed start): QEMU gone -> tap removed -> rules re-applied without it;
- agent start: bridges and forwarding ensured, taps of live VMs ensured, taps of no
  known VM removed, rules re-applied from the records.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from gridvm.agent.records import RecordStore, VmRecord
from gridvm.common.errors import InvalidInput, ToolFailed
from gridvm.context.nocloud import StaticAddress
from gridvm.network.addresses import allocate, gateway_of, mac_for
from gridvm.network.links import Links
from gridvm.network.nft import Nft
from gridvm.network.ruleset import (
    TAP_PREFIX,
    HostNetwork,
    VmNet,
    Zone,
    remote_peers_of,
    render,
)
from gridvm.network.whitelist import EgressRule, WhitelistPolicy, parse_entries
from gridvm.schemas.agent import Assignment, LocalState, RemotePeer

log = logging.getLogger(__name__)

# The VM states in which it holds its tap and address (and has rules).
NET_STATES = frozenset(
    {
        LocalState.staging,
        LocalState.booting,
        LocalState.running,
        LocalState.suspended,
        LocalState.stopping,
    }
)
# The server has validated every entry against the site's policy: take them as they are.
_AS_GIVEN = WhitelistPolicy(allow_wide=True)


@dataclass(frozen=True)
class ZoneSetup:
    name: str
    subnet: ipaddress.IPv4Network

    @property
    def gateway(self) -> ipaddress.IPv4Address:
        return gateway_of(self.subnet)

    @property
    def bridge(self) -> str:
        return bridge_name(self.name)


def tap_name(vm_id: str) -> str:
    """The VM's tap: the tap prefix and 12 hex digits of its id's hash (15 characters)."""
    return TAP_PREFIX + hashlib.sha256(vm_id.encode()).hexdigest()[:12]


def bridge_name(zone: str) -> str:
    return f"gvbr-{zone}"


def zone_setups(zones: Sequence[str], subnets: Mapping[str, str]) -> tuple[ZoneSetup, ...]:
    """This host's zones with their subnets, checked (InvalidInput says what is wrong)."""
    setups: list[ZoneSetup] = []
    for zone in zones:
        text = subnets.get(zone)
        if text is None:
            raise InvalidInput(
                f"zone {zone} has no subnet on this host",
                hint=f"give one with --zone-subnet {zone}=10.x.y.0/24",
            )
        try:
            subnet = ipaddress.IPv4Network(text, strict=True)
        except ValueError as exc:
            raise InvalidInput(
                f"subnet {text!r} of zone {zone} is not an IPv4 network: {exc}",
                hint="write it as ADDRESS/PREFIX with no host bits set, e.g. 10.64.0.0/24",
            ) from None
        if not subnet.is_private:
            raise InvalidInput(
                f"subnet {subnet} of zone {zone} is not a private range",
                hint="VMs are masqueraded: use 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16",
            )
        gateway_of(subnet)  # refuses subnets too small for VMs
        setups.append(ZoneSetup(zone, subnet))
    for a in setups:
        for b in setups:
            if a.name < b.name and a.subnet.overlaps(b.subnet):
                raise InvalidInput(
                    f"subnets of zones {a.name} ({a.subnet}) and {b.name} ({b.subnet}) overlap"
                )
    if not setups:
        raise InvalidInput("site networking needs at least one zone")
    return tuple(setups)


def zone_of(a: Assignment, zones: Sequence[ZoneSetup]) -> ZoneSetup:
    """The zone the VM runs in on this host: the server's choice; with none, trusted if this
    host serves it, else its first zone."""
    wanted = a.zone.value if a.zone is not None else "trusted"
    for zone in zones:
        if zone.name == wanted:
            return zone
    if a.zone is None:
        return zones[0]
    served = ", ".join(z.name for z in zones)
    raise InvalidInput(f"VM {a.vm_id} is in zone {a.zone.value}; this host serves {served}")


def holds_network(record: VmRecord) -> bool:
    return record.ipv4 is not None and record.state in NET_STATES


Route = tuple[ipaddress.IPv4Address, ipaddress.IPv4Address]  # peer address, its host
# In a VM's directory: its remote peers as last sent, so a restarted agent re-applies its
# routes and rules at once (before it has heard from the server).
PEERS_FILE = "remote-peers.json"


def usable_peers(
    vm_id: str, peers: Sequence[RemotePeer], zones: Sequence[ZoneSetup]
) -> tuple[Route, ...]:
    """The VM's peers on other hosts that can be routed from here (pure); the others are
    left out with a warning: an unreadable address, or one inside a zone subnet of this
    host (the hosts' zone subnets overlap: the peer's packets would stay on this host)."""
    usable: list[Route] = []
    for peer in peers:
        try:
            address, via = ipaddress.IPv4Address(peer.address), ipaddress.IPv4Address(peer.via)
        except ValueError:
            log.warning(
                "VM %s: peer %s via %s is not IPv4: left out", vm_id, peer.address, peer.via
            )
            continue
        clash = next((z for z in zones if address in z.subnet), None)
        if clash is not None:
            log.warning(
                "VM %s cannot reach its peer %s on another host: that address is in zone %s's "
                "subnet %s of this host (give each host zone subnets no other host uses)",
                vm_id,
                address,
                clash.name,
                clash.subnet,
            )
            continue
        usable.append((address, via))
    return tuple(sorted(set(usable)))


def host_network(
    uplink: str,
    zones: Sequence[ZoneSetup],
    records: Iterable[VmRecord],
    zone_egress: Mapping[str, Sequence[str]],
    remote_peers: Mapping[str, Sequence[Route]] | None = None,
) -> HostNetwork:
    """The host's whole network state from the VM records (pure).

    A record that cannot be rendered (its zone is no longer served here, an unreadable
    whitelist) is left out, with a warning: its tap then matches no VM and all its traffic
    is dropped, and the other VMs keep their rules."""
    vms = []
    for record in sorted(records, key=lambda r: r.vm_id):
        if not holds_network(record):
            continue
        assert record.ipv4 is not None
        a = record.assignment
        try:
            vm = VmNet(
                vm_id=record.vm_id,
                tap=tap_name(record.vm_id),
                mac=mac_for(record.vm_id),
                ipv4=ipaddress.IPv4Address(record.ipv4),
                zone=zone_of(a, zones).name,
                deployment_id=a.deployment_id or record.vm_id,
                egress=tuple(parse_entries(list(a.egress), _AS_GIVEN)),
                vm_to_vm=a.vm_to_vm,
                remote_peers=tuple(p for p, _ in (remote_peers or {}).get(record.vm_id, ())),
            )
        except (InvalidInput, ValueError) as exc:
            log.warning(
                "VM %s gets no network rules (all its traffic is dropped): %s", a.vm_id, exc
            )
            continue
        vms.append(vm)
    return HostNetwork(
        uplink=uplink,
        zones=tuple(
            Zone(
                name=z.name,
                bridge=z.bridge,
                subnet=z.subnet,
                gateway=z.gateway,
                site_whitelist=_site_rules(zone_egress.get(z.name, ())),
            )
            for z in zones
        ),
        vms=tuple(vms),
    )


def choose_address(
    zone: ZoneSetup, vm_id: str, wanted: str | None, records: Iterable[VmRecord]
) -> ipaddress.IPv4Address:
    """The VM's address: the one it had if still free, else the lowest free one."""
    in_use = {
        ipaddress.IPv4Address(r.ipv4)
        for r in records
        if r.vm_id != vm_id and r.ipv4 is not None and holds_network(r)
    }
    if wanted is not None:
        previous = ipaddress.IPv4Address(wanted)
        if previous in zone.subnet and previous not in in_use and previous != zone.gateway:
            return previous
    return allocate(zone.subnet, in_use)


def static_address(zone: ZoneSetup, ipv4: str) -> StaticAddress:
    """What the guest is told: its address on the zone subnet; gateway and DNS = the host."""
    return StaticAddress(
        interface=ipaddress.IPv4Interface(f"{ipv4}/{zone.subnet.prefixlen}"),
        gateway=zone.gateway,
        nameservers=(zone.gateway,),
    )


def _site_rules(entries: Sequence[str]) -> tuple[EgressRule, ...]:
    return tuple(parse_entries(list(entries), _AS_GIVEN))


class SiteNetwork:
    """The I/O side: bridges, taps and rules on this host, serialised by one lock."""

    def __init__(
        self,
        records: RecordStore,
        zones: tuple[ZoneSetup, ...],
        uplink: str | None = None,
        links: Links | None = None,
        nft: Nft | None = None,
    ) -> None:
        self.records = records
        self.zones = zones
        self.links = links or Links()
        self.nft = nft or Nft()
        self._uplink = uplink
        self.zone_egress: dict[str, list[str]] = {}
        # Each VM's vm_to_vm peers on other hosts, as the server last sent them (usable ones).
        self.remote_peers: dict[str, tuple[Route, ...]] = {}
        self._uplink_address: ipaddress.IPv4Address | None = None
        self._uplink_read = False
        self._lock = threading.RLock()

    @property
    def uplink(self) -> str:
        if self._uplink is None:
            self._uplink = self.links.default_uplink()
        return self._uplink

    @property
    def uplink_address(self) -> ipaddress.IPv4Address | None:
        """The host's IPv4 address on its uplink (the server tells other hosts: the next hop
        to this host's VMs); None, with a warning, if the uplink has none."""
        if not self._uplink_read:
            self._uplink_read = True
            self._uplink_address = self.links.address_of(self.uplink)
            if self._uplink_address is None:
                log.warning("uplink %s has no IPv4 address: no VM-to-VM across hosts", self.uplink)
        return self._uplink_address

    def setup(self) -> None:
        """Agent start: forwarding, bridges, the taps of live VMs, then the rules."""
        with self._lock:
            self.links.enable_forwarding()
            for zone in self.zones:
                self.links.ensure_bridge(
                    zone.bridge, ipaddress.IPv4Interface(f"{zone.gateway}/{zone.subnet.prefixlen}")
                )
            records = self.records.load_all()
            live = {tap_name(r.vm_id): r for r in records.values() if holds_network(r)}
            self.remote_peers = {
                r.vm_id: routes for r in live.values() if (routes := self._saved_peers(r.vm_id))
            }
            for tap in self.links.taps():
                if tap not in live:
                    log.warning("removing tap %s of no VM on this host", tap)
                    self.links.remove(tap)
            for tap, record in sorted(live.items()):
                try:
                    bridge = zone_of(record.assignment, self.zones).bridge
                except InvalidInput as exc:
                    log.warning("VM %s keeps no tap: %s", record.vm_id, exc)
                    self.links.remove(tap)
                    continue
                self.links.ensure_tap(tap, bridge)
            self._apply(records.values())
            log.info(
                "site networking: zones %s, uplink %s, %d VM taps",
                ", ".join(f"{z.name}={z.subnet}" for z in self.zones),
                self.uplink,
                len(live),
            )

    def set_zone_egress(self, zone_egress: Mapping[str, Sequence[str]]) -> None:
        """The site's per-zone whitelists as the server sent them; re-apply if they changed."""
        wanted = {k: list(v) for k, v in zone_egress.items()}
        for entries in wanted.values():
            _site_rules(entries)  # refused here, before the rules in force are touched
        with self._lock:
            if wanted == self.zone_egress:
                return
            self.zone_egress = wanted
            self._apply(self.records.load_all().values())

    def set_remote_peers(self, peers: Mapping[str, Sequence[RemotePeer]]) -> None:
        """Each VM's vm_to_vm peers on other hosts, as the server sent them; routes and rules
        follow if they changed."""
        wanted = {
            vm_id: routes
            for vm_id, listed in peers.items()
            if (routes := usable_peers(vm_id, listed, self.zones))
        }
        with self._lock:
            if wanted == self.remote_peers:
                return
            for vm_id in sorted(set(wanted) | set(self.remote_peers)):
                self._save_peers(vm_id, wanted.get(vm_id, ()))
            self.remote_peers = wanted
            self._apply(self.records.load_all().values())

    def _save_peers(self, vm_id: str, routes: tuple[Route, ...]) -> None:
        directory = self.records.dir_of(vm_id)
        if not directory.is_dir():
            return
        path = directory / PEERS_FILE
        if not routes:
            path.unlink(missing_ok=True)
            return
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps([[str(a), str(v)] for a, v in routes]))
        tmp.replace(path)

    def _saved_peers(self, vm_id: str) -> tuple[Route, ...]:
        path = self.records.dir_of(vm_id) / PEERS_FILE
        try:
            listed = json.loads(path.read_text())
            peers = [RemotePeer(address=str(a), via=str(v)) for a, v in listed]
        except FileNotFoundError:
            return ()
        except (OSError, ValueError, TypeError) as exc:
            log.warning(
                "VM %s: unreadable %s (%s): its remote peers wait for the server", vm_id, path, exc
            )
            return ()
        return usable_peers(vm_id, peers, self.zones)

    def attach(self, record: VmRecord) -> StaticAddress:
        """Give the VM its address (saved in its record), its tap and its rules."""
        with self._lock:
            zone = zone_of(record.assignment, self.zones)
            others = self.records.load_all()
            others.pop(record.vm_id, None)
            ipv4 = choose_address(zone, record.vm_id, record.ipv4, others.values())
            record.ipv4 = str(ipv4)
            self.records.save(record)
            self.links.ensure_tap(tap_name(record.vm_id), zone.bridge)
            self._apply([*others.values(), record])
            return static_address(zone, record.ipv4)

    def release(self, vm_id: str) -> None:
        """The VM's tap goes and the rules are re-applied without it."""
        with self._lock:
            self.links.remove(tap_name(vm_id))
            records = self.records.load_all()
            records.pop(vm_id, None)
            self._apply(records.values())

    def live_text(self) -> str:
        return self.nft.live_text()

    def _apply(self, records: Iterable[VmRecord]) -> None:
        host = host_network(self.uplink, self.zones, records, self.zone_egress, self.remote_peers)
        self.nft.apply(render(host))
        self._route_peers(host)

    def _route_peers(self, host: HostNetwork) -> None:
        """A host route to each remote peer of the VMs in ``host`` via its host; gridvm's
        other routes go. A route that cannot be made is logged (the peer stays unreachable)."""
        via = {p: v for routes in self.remote_peers.values() for p, v in routes}
        wanted = {p: via[p] for vm in host.vms for p in remote_peers_of(vm) if p in via}
        current = self.links.peer_routes()
        for address in sorted(set(current) - set(wanted)):
            self._try(functools.partial(self.links.drop_peer_route, address))
        for address, hop in sorted(wanted.items()):
            if current.get(address) != hop:
                self._try(functools.partial(self.links.set_peer_route, address, hop))

    @staticmethod
    def _try(action: Callable[[], None]) -> None:
        try:
            action()
        except ToolFailed as exc:
            log.warning("%s", exc)
