"""Apply the rendered rule set with real nft in network namespaces this test creates.

Layout (all namespaces made here and deleted afterwards, even on failure)::

    [vm]  eth0 10.77.0.2 ── gvt-vm1 ─[bridge gvbr-t 10.77.0.1]─ (host)
    [vm2] eth0 10.77.0.3 ── gvt-vm2 ─┘
    (host) up0 192.0.2.1 ── eth0 192.0.2.10 [target]

The "host" namespace runs the gridvm tables; the "target" namespace listens on
an allowed and a not-allowed TCP port, and knows a route back to the VM subnet
so that an inbound connection attempt would get through without the rules.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

import pytest

from gridvm.common.errors import ToolFailed
from gridvm.network.nft import Nft
from gridvm.network.ruleset import HostNetwork, VmNet, Zone, render
from gridvm.network.whitelist import parse_entries
from tests.network.namespaces import UPLINK_IP, namespaces, ns_exec, wire_uplink
from tests.network.test_ruleset import GOLDEN_HOSTS

VM_MAC = "52:54:00:4d:00:02"
VM2_MAC = "52:54:00:4d:00:03"
ALLOWED_PORT = 8080
BLOCKED_PORT = 8081
VM_PORT = 9000
HOST_PORT = 9100  # a service on the host that VMs must not reach
DNS_PORT = 53  # the site lets VMs use DNS on the gateway
UDP_PORT = 5300  # whitelisted for UDP: a reply from source port 67 (DHCP server) must not pass
ETHERTYPE = 0x88B5  # "local experimental": a non-IP frame a VM must not send

# A listener that answers "hi <client address>" on the ports given as arguments.
LISTENER = """
import socket, sys, threading
def serve(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(16)
    while True:
        c, peer = s.accept(); c.sendall(b"hi " + peer[0].encode()); c.close()
for p in sys.argv[1:]:
    threading.Thread(target=serve, args=(int(p),), daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
"""

# Connect (optionally from a given source address); exit 0 if the listener answered,
# printing the client address the listener saw.
CONNECT = """
import socket, sys
host, port, source = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket(); s.settimeout(1.0)
if source:
    s.bind((source, 0))
try:
    s.connect((host, port)); answer = s.recv(64)
    print(answer[3:].decode()); sys.exit(0 if answer.startswith(b"hi ") else 1)
except OSError:
    sys.exit(1)
"""


# Echo UDP datagrams on the port given.
UDP_ECHO = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", int(sys.argv[1])))
print("ready", flush=True)
while True:
    data, peer = s.recvfrom(64); s.sendto(data, peer)
"""

# Send one UDP datagram from a source port; exit 0 if it came back.
UDP_SEND = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1.0)
s.bind(("0.0.0.0", int(sys.argv[3]))); s.sendto(b"ping", (sys.argv[1], int(sys.argv[2])))
try:
    sys.exit(0 if s.recvfrom(64)[0] == b"ping" else 1)
except OSError:
    sys.exit(1)
"""

# Wait for one raw frame of ETHERTYPE on eth0 (exit 0) or time out (exit 1).
FRAME_RECEIVE = """
import socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(int(sys.argv[1])))
s.bind(("eth0", 0)); s.settimeout(1.5)
print("ready", flush=True)
try:
    sys.exit(0 if b"gridvm-test" in s.recv(2048) else 1)
except OSError:
    sys.exit(1)
"""

# Broadcast one raw frame of ETHERTYPE from eth0.
FRAME_SEND = """
import socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); s.bind(("eth0", 0))
src = bytes.fromhex(open("/sys/class/net/eth0/address").read().strip().replace(":", ""))
s.send(b"\\xff" * 6 + src + int(sys.argv[1]).to_bytes(2, "big") + b"gridvm-test".ljust(46))
"""


@dataclass
class Bed:
    host: str
    vm: str
    vm2: str
    target: str
    nft: Nft

    def connects(self, ns: str, address: str, port: int, source: str = "") -> bool:
        return self.seen_as(ns, address, port, source) is not None

    def seen_as(self, ns: str, address: str, port: int, source: str = "") -> str | None:
        """The client address the listener saw, or None if the connection failed."""
        argv = [*self._py(ns, CONNECT), address, str(port), source]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
        return proc.stdout.strip() if proc.returncode == 0 else None

    def udp_echoes(self, sport: int) -> bool:
        argv = [*self._py(self.vm, UDP_SEND), "192.0.2.10", str(UDP_PORT), str(sport)]
        return subprocess.run(argv, capture_output=True, timeout=10, check=False).returncode == 0

    def frame_arrives(self) -> bool:
        """Does a non-IP broadcast frame sent by the VM reach the other VM?"""
        receiver = subprocess.Popen(
            [*self._py(self.vm2, FRAME_RECEIVE), str(ETHERTYPE)], stdout=subprocess.PIPE, text=True
        )
        try:
            assert receiver.stdout is not None and receiver.stdout.readline().strip() == "ready"
            send = [*self._py(self.vm, FRAME_SEND), str(ETHERTYPE)]
            subprocess.run(send, check=True, capture_output=True, timeout=10)
            return receiver.wait(timeout=10) == 0
        finally:
            receiver.kill()
            receiver.wait(timeout=5)

    @staticmethod
    def _py(ns: str, code: str) -> list[str]:
        return ["ip", "netns", "exec", ns, sys.executable, "-c", code]


def _listen(ns: str, *ports: int, code: str = LISTENER) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        ["ip", "netns", "exec", ns, sys.executable, "-c", code, *map(str, ports)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def _attach_vm(host: str, ns: str, tap: str, mac: str, address: str) -> None:
    """A veth pair standing in for the VM's tap: host end on the zone bridge, eth0 in ``ns``."""
    ns_exec(host, "ip", "link", "add", tap, "type", "veth", "peer", "name", "eth0", "netns", ns)
    ns_exec(host, "ip", "link", "set", tap, "master", "gvbr-t", "up")
    ns_exec(ns, "ip", "link", "set", "eth0", "address", mac, "up")
    ns_exec(ns, "ip", "addr", "add", f"{address}/24", "dev", "eth0")
    ns_exec(ns, "ip", "route", "add", "default", "via", "10.77.0.1")


@pytest.fixture
def bed() -> Iterator[Bed]:
    tag = uuid.uuid4().hex[:6]
    host, vm, vm2, target = (f"gv{kind}-{tag}" for kind in "hvwx")
    procs: list[subprocess.Popen[str]] = []
    with namespaces(host, vm, vm2, target):
        try:
            ns_exec(host, "ip", "link", "add", "gvbr-t", "type", "bridge")
            ns_exec(host, "ip", "addr", "add", "10.77.0.1/24", "dev", "gvbr-t")
            ns_exec(host, "ip", "link", "set", "gvbr-t", "up")
            _attach_vm(host, vm, "gvt-vm1", VM_MAC, "10.77.0.2")
            _attach_vm(host, vm2, "gvt-vm2", VM2_MAC, "10.77.0.3")
            wire_uplink(host, target)  # the uplink to the "outside" (the target namespace)
            ns_exec(target, "ip", "route", "add", "10.77.0.0/24", "via", UPLINK_IP)
            ns_exec(host, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
            procs.append(_listen(target, ALLOWED_PORT, BLOCKED_PORT))
            procs.append(_listen(vm, VM_PORT))
            procs.append(_listen(vm2, VM_PORT))
            procs.append(_listen(host, HOST_PORT, DNS_PORT))
            procs.append(_listen(target, UDP_PORT, code=UDP_ECHO))
            yield Bed(host, vm, vm2, target, Nft(prefix=("ip", "netns", "exec", host)))
        finally:
            for proc in procs:
                proc.kill()
                proc.wait(timeout=5)


ZONE = Zone(
    name="trusted",
    bridge="gvbr-t",
    subnet=IPv4Network("10.77.0.0/24"),
    gateway=IPv4Address("10.77.0.1"),
)


def _state(
    *, other_vm_port: int = BLOCKED_PORT, vm2_deployment: str = "dep-1", vm_to_vm: bool = False
) -> HostNetwork:
    return HostNetwork(
        uplink="up0",
        zones=(ZONE,),
        vms=(
            VmNet(
                vm_id="vm-1",
                tap="gvt-vm1",
                mac=VM_MAC,
                ipv4=IPv4Address("10.77.0.2"),
                zone="trusted",
                deployment_id="dep-1",
                egress=parse_entries([f"192.0.2.10:{ALLOWED_PORT}", f"192.0.2.10:{UDP_PORT}/udp"]),
                vm_to_vm=vm_to_vm,
            ),
            VmNet(
                vm_id="vm-2",
                tap="gvt-vm2",
                mac=VM2_MAC,
                ipv4=IPv4Address("10.77.0.3"),
                zone="trusted",
                deployment_id=vm2_deployment,
                vm_to_vm=vm_to_vm,
            ),
            # A third VM (no namespace behind it) whose whitelist opens the blocked port:
            # VM 1 pretending to be it must still be stopped, by the anti-spoofing rules.
            VmNet(
                vm_id="vm-3",
                tap="gvt-vm3",
                mac="52:54:00:4d:00:04",
                ipv4=IPv4Address("10.77.0.4"),
                zone="trusted",
                deployment_id="dep-3",
                egress=parse_entries([f"192.0.2.10:{other_vm_port}"]),
            ),
        ),
    )


def test_apply_then_read_back_the_live_tables(bed: Bed) -> None:
    assert bed.nft.live() == {"bridge": [], "inet": []}
    bed.nft.apply(render(_state()))
    live = bed.nft.live()
    chains = {item["chain"]["name"] for item in live["inet"] if "chain" in item}
    assert {"forward", "input", "output", "postrouting", "to-gvt-vm1", "to-gvt-vm3"} <= chains
    bridge_chains = {item["chain"]["name"] for item in live["bridge"] if "chain" in item}
    assert {"prerouting", "forward", "from-gvt-vm1", "from-gvt-vm3"} <= bridge_chains
    bed.nft.remove()
    assert bed.nft.live() == {"bridge": [], "inet": []}


def test_reapply_replaces_the_tables_and_a_bad_script_changes_nothing(bed: Bed) -> None:
    bed.nft.apply(render(_state()))
    bed.nft.apply(render(_state(other_vm_port=9999)))
    text = bed.nft.live_text()
    assert "dport 9999" in text and f"dport {BLOCKED_PORT}" not in text
    assert text.count("table inet gridvm") == 1 and text.count("chain to-gvt-vm3") == 1
    with pytest.raises(ToolFailed, match="nft could not check"):
        bed.nft.apply(render(_state()) + "table inet gridvm { chain x { bogus } }\n")
    assert bed.nft.live_text() == text


def test_packets_follow_the_rules(bed: Bed) -> None:
    # Without rules everything gets through: the checks below are not vacuous.
    assert bed.connects(bed.target, "10.77.0.2", VM_PORT)
    assert bed.seen_as(bed.vm, "192.0.2.10", BLOCKED_PORT) == "10.77.0.2"  # no NAT yet
    assert bed.connects(bed.vm, "10.77.0.1", HOST_PORT)

    started = time.monotonic()
    bed.nft.apply(render(_state()))
    # Whitelisted egress works, masqueraded to the host's uplink address.
    assert bed.seen_as(bed.vm, "192.0.2.10", ALLOWED_PORT) == "192.0.2.1"
    assert not bed.connects(bed.vm, "192.0.2.10", BLOCKED_PORT), "egress off the whitelist got out"
    assert not bed.connects(bed.target, "10.77.0.2", VM_PORT), "inbound connection reached the VM"
    assert not bed.connects(bed.host, "10.77.0.2", VM_PORT), (
        "the host opened a connection to the VM"
    )
    assert not bed.connects(bed.vm, "10.77.0.1", HOST_PORT), "the VM reached a host service"
    assert not bed.connects(bed.vm, "192.0.2.1", HOST_PORT), "the VM reached the host's uplink"
    assert bed.connects(bed.vm, "10.77.0.1", DNS_PORT), "DNS on the gateway is blocked"

    # Spoofing: VM 1 sends as VM 3 (whose whitelist allows BLOCKED_PORT) ...
    ns_exec(bed.vm, "ip", "addr", "add", "10.77.0.4/32", "dev", "eth0")
    assert not bed.connects(bed.vm, "192.0.2.10", BLOCKED_PORT, source="10.77.0.4")
    # ... and from a foreign MAC with its own address.
    ns_exec(bed.vm, "ip", "link", "set", "eth0", "address", "52:54:00:4d:00:99")
    ns_exec(bed.host, "ip", "neigh", "flush", "all")
    assert not bed.connects(bed.vm, "192.0.2.10", ALLOWED_PORT), "a foreign MAC got out"

    # Control: without the bridge table (anti-spoofing) both would have got out.
    ns_exec(bed.host, "nft", "delete", "table", "bridge", "gridvm")
    assert bed.connects(bed.vm, "192.0.2.10", ALLOWED_PORT)
    assert bed.connects(bed.vm, "192.0.2.10", BLOCKED_PORT, source="10.77.0.4")
    assert time.monotonic() - started < 30


def test_vms_talk_only_within_their_deployment_and_when_asked(bed: Bed) -> None:
    assert bed.connects(bed.vm, "10.77.0.3", VM_PORT)  # control: the bridge itself is open

    bed.nft.apply(render(_state(vm_to_vm=False)))
    assert not bed.connects(bed.vm, "10.77.0.3", VM_PORT), "VM-to-VM without asking"
    assert not bed.connects(bed.vm2, "10.77.0.2", VM_PORT), "VM-to-VM without asking"
    # The bridge table alone keeps them apart, even where bridged frames skip the inet hooks.
    ns_exec(bed.host, "sysctl", "-q", "-w", "net.bridge.bridge-nf-call-iptables=0")
    assert not bed.connects(bed.vm, "10.77.0.3", VM_PORT), "VM-to-VM without br_netfilter"
    ns_exec(bed.host, "sysctl", "-q", "-w", "net.bridge.bridge-nf-call-iptables=1")

    bed.nft.apply(render(_state(vm_to_vm=True, vm2_deployment="dep-2")))
    assert not bed.connects(bed.vm, "10.77.0.3", VM_PORT), "VM-to-VM across deployments"

    bed.nft.apply(render(_state(vm_to_vm=True)))
    assert bed.connects(bed.vm, "10.77.0.3", VM_PORT), "same deployment, asked, is blocked"
    assert bed.connects(bed.vm2, "10.77.0.2", VM_PORT), "same deployment, asked, is blocked"


def test_no_dhcp_server_replies_and_no_other_ethertypes_from_a_vm(bed: Bed) -> None:
    assert bed.udp_echoes(sport=67) and bed.frame_arrives()  # controls, before the rules

    bed.nft.apply(render(_state()))
    assert bed.udp_echoes(sport=1067), "whitelisted UDP is blocked"
    assert not bed.udp_echoes(sport=67), "a DHCP-server-like packet left the VM"
    assert not bed.frame_arrives(), "a non-IP frame crossed the bridge"


@pytest.mark.parametrize("name", sorted(GOLDEN_HOSTS))
def test_every_golden_rule_set_loads_into_the_kernel(name: str) -> None:
    ns = f"gvg-{uuid.uuid4().hex[:6]}"
    with namespaces(ns):
        nft = Nft(prefix=("ip", "netns", "exec", ns))
        nft.apply(render(GOLDEN_HOSTS[name]))
        assert nft.live()["inet"] and nft.live()["bridge"]
