"""Site networking of the agent with real bridges, taps and nft, in a namespace this test makes.

QEMU is the fake driver of the other Machines tests: what is real is the host side
(``ip`` and ``nft`` run inside the namespace), the record store and the seed ISO.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gridvm.agent.machines import SEED, Machines
from gridvm.agent.network import SiteNetwork, tap_name, zone_setups
from gridvm.agent.reconcile import Action, Do
from gridvm.agent.records import RecordStore, VmRecord
from gridvm.common.config import DEFAULT_ZONE_SUBNETS
from gridvm.common.errors import HypervisorError
from gridvm.context.nocloud import read_seed_iso
from gridvm.images.cache import ImageCache
from gridvm.network.links import Links
from gridvm.network.nft import Nft
from gridvm.schemas.agent import Assignment, EndCause, LocalState, RemotePeer
from gridvm.schemas.hosts import Zone
from tests.agent.helpers import FakeDriver, Images, assignment


@dataclass
class NetHost:
    ns: str
    machines: Machines
    driver: FakeDriver
    records: RecordStore
    network: SiteNetwork

    def ip(self, *args: str) -> str:
        return subprocess.run(
            ["ip", "netns", "exec", self.ns, "ip", *args],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout

    def master_of(self, ifname: str) -> str | None:
        """The bridge ``ifname`` is on ("-" if on none); None if there is no such link."""
        links = json.loads(self.ip("-j", "link", "show"))
        for link in links:
            if link["ifname"] == ifname:
                return str(link.get("master", "-"))
        return None

    def rules(self) -> str:
        return self.network.live_text()


@pytest.fixture
def net_host(tmp_path: Path, images: Images) -> Iterator[NetHost]:
    ns = f"gvag-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", ns], check=True, timeout=10)
    prefix = ("ip", "netns", "exec", ns)
    try:
        subprocess.run([*prefix, "ip", "link", "set", "lo", "up"], check=True, timeout=10)
        # The uplink: one end of a veth pair, its peer left in the namespace too.
        subprocess.run(
            [*prefix, "ip", "link", "add", "up0", "type", "veth", "peer", "name", "up1"],
            check=True,
            timeout=10,
        )
        subprocess.run([*prefix, "ip", "addr", "add", "192.0.2.1/24", "dev", "up0"], check=True)
        subprocess.run([*prefix, "ip", "link", "set", "up0", "up"], check=True, timeout=10)
        subprocess.run(
            [*prefix, "ip", "route", "add", "default", "via", "192.0.2.254"], check=True, timeout=10
        )

        def fetch(digest: str, target: Path) -> None:
            shutil.copyfile(images.files[digest], target)

        records = RecordStore(tmp_path / "vms")
        network = SiteNetwork(
            records,
            zone_setups(("trusted", "dmz"), DEFAULT_ZONE_SUBNETS),
            links=Links(prefix),
            nft=Nft(prefix),
        )
        driver = FakeDriver()
        with ImageCache(tmp_path / "cache", 1024**3) as cache:
            machines = Machines(records, cache, driver, fetch, "tcg", network=network)
            network.setup()
            yield NetHost(ns, machines, driver, records, network)
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10, check=False)


def start(host: NetHost, a: Assignment) -> VmRecord:
    host.machines.apply(Action(Do.start, a.vm_id, a), None)
    return host.records.load_all()[a.vm_id]


def test_setup_makes_the_zone_bridges_with_their_gateways_and_finds_the_uplink(
    net_host: NetHost,
) -> None:
    trusted = json.loads(net_host.ip("-j", "-4", "addr", "show", "dev", "gvbr-trusted"))
    dmz = json.loads(net_host.ip("-j", "-4", "addr", "show", "dev", "gvbr-dmz"))
    assert [(a["local"], a["prefixlen"]) for a in trusted[0]["addr_info"]] == [("10.64.0.1", 24)]
    assert [(a["local"], a["prefixlen"]) for a in dmz[0]["addr_info"]] == [("10.65.0.1", 24)]
    assert net_host.network.uplink == "up0"
    assert 'oifname "up0" ip saddr { 10.64.0.0/24, 10.65.0.0/24 } masquerade' in net_host.rules()


def test_a_vm_gets_an_address_a_tap_on_its_zone_bridge_and_rules_before_qemu(
    net_host: NetHost, images: Images
) -> None:
    a = assignment("vm-net1", image_digest=images.old).model_copy(
        update={"zone": Zone.dmz, "egress": ["192.0.2.10:8080"]}
    )
    r = start(net_host, a)
    assert (r.state, r.ipv4) == (LocalState.running, "10.65.0.2")
    tap = tap_name(a.vm_id)
    assert net_host.master_of(tap) == "gvbr-dmz"
    rules = net_host.rules()
    assert f"chain from-{tap}" in rules and "ip daddr 192.0.2.10 tcp dport 8080 accept" in rules
    spec = net_host.machines.spec(a)
    assert (spec.network, spec.tap) == ("tap", tap)
    seed = read_seed_iso(net_host.records.dir_of(a.vm_id) / SEED)
    assert seed["gridvm-net"] == b"address=10.65.0.2/24\ngateway=10.65.0.1\nnameserver=10.65.0.1\n"
    assert b'addresses: ["10.65.0.2/24"]' in seed["network-config"]

    # A second VM gets the next address; when the first ends, its tap and rules go.
    b = start(net_host, assignment("vm-net2", image_digest=images.old))
    assert (b.ipv4, net_host.master_of(tap_name("vm-net2"))) == ("10.64.0.2", "gvbr-trusted")
    net_host.machines.apply(
        Action(Do.finish, a.vm_id, a, cause=EndCause.poweroff, state=LocalState.ended), r
    )
    assert net_host.master_of(tap) is None
    rules = net_host.rules()
    assert f"from-{tap}" not in rules and f"from-{tap_name('vm-net2')}" in rules


def test_a_failed_start_leaves_no_tap_no_rule_and_frees_the_address(
    net_host: NetHost, images: Images
) -> None:
    net_host.driver.fail["start"] = HypervisorError("no QEMU today")
    a = assignment("vm-net3", image_digest=images.old)
    r = start(net_host, a)
    assert (r.state, r.cause) == (LocalState.failed, EndCause.start_failed)
    assert net_host.master_of(tap_name(a.vm_id)) is None
    assert tap_name(a.vm_id) not in net_host.rules()
    del net_host.driver.fail["start"]
    b = start(net_host, assignment("vm-net4", image_digest=images.old))
    assert b.ipv4 == "10.64.0.2"


def test_agent_restart_keeps_the_taps_of_live_vms_and_drops_strays(
    net_host: NetHost, images: Images
) -> None:
    a = assignment("vm-net5", image_digest=images.old)
    start(net_host, a)
    net_host.ip("tuntap", "add", "dev", "gvtstray", "mode", "tap")
    net_host.ip("link", "del", "dev", tap_name(a.vm_id))  # lost while the agent was away
    net_host.network.setup()
    assert net_host.master_of(tap_name(a.vm_id)) == "gvbr-trusted"
    assert net_host.master_of("gvtstray") is None
    assert f"chain from-{tap_name(a.vm_id)}" in net_host.rules()


def test_the_admin_reads_the_live_rules_on_the_host(net_host: NetHost, images: Images) -> None:
    a = assignment("vm-net6", image_digest=images.old).model_copy(
        update={"egress": ["192.0.2.10:8080"]}
    )
    start(net_host, a)
    gridvm = str(Path(sys.executable).parent / "gridvm")
    shown = subprocess.run(
        ["ip", "netns", "exec", net_host.ns, gridvm, "host-rules"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert f"chain from-{tap_name(a.vm_id)}" in shown.stdout
    assert "ip daddr 192.0.2.10 tcp dport 8080 accept" in shown.stdout
    net_host.network.nft.remove()
    empty = subprocess.run(
        ["ip", "netns", "exec", net_host.ns, gridvm, "host-rules"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert empty.returncode == 1 and "no gridvm rules on this host" in empty.stderr


def test_remote_peers_get_a_host_route_and_rules_that_go_when_the_peer_does(
    net_host: NetHost, images: Images
) -> None:
    a = assignment("vm-net7", image_digest=images.old).model_copy(
        update={"deployment_id": "dep-x", "vm_to_vm": True}
    )
    r = start(net_host, a)
    assert str(net_host.network.uplink_address) == "192.0.2.1"
    net_host.network.set_remote_peers({a.vm_id: [RemotePeer(address="10.64.2.2", via="192.0.2.2")]})
    routes = json.loads(net_host.ip("-j", "-4", "route", "show", "10.64.2.2/32"))
    assert [(x["dst"], x["gateway"], x["dev"]) for x in routes] == [
        ("10.64.2.2", "192.0.2.2", "up0")
    ]
    rules = net_host.rules()
    assert f"ip saddr . ip daddr {{ 10.64.2.2 . {r.ipv4} }} accept" in rules
    # A restarted agent puts them back before it hears from the server.
    restarted = SiteNetwork(
        net_host.records,
        net_host.network.zones,
        links=net_host.network.links,
        nft=net_host.network.nft,
    )
    restarted.setup()
    assert "10.64.2.2 via 192.0.2.2" in net_host.ip("-4", "route", "show", "10.64.2.2/32")
    assert f"ip saddr . ip daddr {{ 10.64.2.2 . {r.ipv4} }} accept" in net_host.rules()
    # The peer ended: its route and rules go; the host's other routes stay.
    net_host.network.set_remote_peers({a.vm_id: []})
    assert net_host.ip("-4", "route", "show", "10.64.2.2/32").strip() == ""
    assert "10.64.2.2" not in net_host.rules()
    assert "default via 192.0.2.254" in net_host.ip("-4", "route", "show")
    # When the VM itself ends, the routes to its peers go with it.
    net_host.network.set_remote_peers({a.vm_id: [RemotePeer(address="10.64.2.3", via="192.0.2.2")]})
    net_host.machines.apply(
        Action(Do.finish, a.vm_id, a, cause=EndCause.poweroff, state=LocalState.ended), r
    )
    assert net_host.ip("-4", "route", "show", "10.64.2.3/32").strip() == ""
