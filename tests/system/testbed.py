"""Several gridvm hosts on one machine: each host a network namespace running an agent with
site networking; their uplinks meet on a bridge in a "target" namespace, which also runs a
small TCP service. The server runs in the test process.

    [host1 ns] agent, gvbr-trusted 10.64.1.1, up0 192.0.2.1 ─┐
    [host2 ns] agent, gvbr-trusted 10.64.2.1, up0 192.0.2.2 ─┤ br0 192.0.2.10 [target ns]
                                                              ┘  ports 8080, 8081

An agent reaches the server through two small relays (TCP 127.0.0.1:8750 in its namespace
-> a unix socket -> the server's TCP port in this namespace): no interface of the machine's
own network namespace is touched.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from tests.servers import RunningServer

TARGET_IP = "192.0.2.10"
AGENT_PORT = 8750
TARGET_PORTS = (8080, 8081)

# relay.py LISTEN CONNECT, each "tcp:HOST:PORT" or "unix:PATH"; bytes both ways.
RELAY = """
import socket, sys, threading
def sock(spec):
    kind, _, addr = spec.partition(":")
    if kind == "unix":
        return socket.socket(socket.AF_UNIX), addr
    host, _, port = addr.rpartition(":")
    return socket.socket(), (host, int(port))
def pipe(a, b):
    try:
        while True:
            data = a.recv(65536)
            if not data:
                break
            b.sendall(data)
    except OSError:
        pass
    try:
        b.shutdown(socket.SHUT_WR)
    except OSError:
        pass
listener, address = sock(sys.argv[1])
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(address)
listener.listen(64)
print("ready", flush=True)
while True:
    client, _ = listener.accept()
    upstream, target = sock(sys.argv[2])
    try:
        upstream.connect(target)
    except OSError:
        client.close()
        continue
    threading.Thread(target=pipe, args=(client, upstream), daemon=True).start()
    threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()
"""

LISTENER = """
import socket, sys, threading
def serve(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(16)
    while True:
        c, peer = s.accept(); c.sendall(f"hi-from-{port}-to-{peer[0]}\\n".encode()); c.close()
for p in sys.argv[1:]:
    threading.Thread(target=serve, args=(int(p),), daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
"""


def ns_run(ns: str, *argv: str, timeout_s: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ip", "netns", "exec", ns, *argv],
        check=True,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


def _ready(proc: subprocess.Popen[str]) -> subprocess.Popen[str]:
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


@dataclass
class TestHost:
    __test__ = False

    name: str
    ns: str
    index: int
    data_dir: Path
    agent: subprocess.Popen[bytes] | None = None

    @property
    def uplink_ip(self) -> str:
        return f"192.0.2.{self.index}"

    @property
    def trusted_subnet(self) -> str:
        return f"10.64.{self.index}.0/24"

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"{self.name}.log"

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass
class Testbed:
    __test__ = False  # not a test class (pytest collects names starting with "Test")

    target_ns: str
    hosts: list[TestHost] = field(default_factory=list)


@contextmanager
def run_testbed(server: RunningServer, work: Path, n_hosts: int = 2) -> Iterator[Testbed]:
    """``n_hosts`` agents in their own namespaces, registered with ``server``."""
    tag = uuid.uuid4().hex[:5]
    target = f"gvtb-{tag}-t"
    made: list[str] = []
    procs: list[subprocess.Popen[str]] = []
    bed = Testbed(target)
    try:
        subprocess.run(["ip", "netns", "add", target], check=True, timeout=10)
        made.append(target)
        ns_run(target, "ip", "link", "set", "lo", "up")
        ns_run(target, "ip", "link", "add", "br0", "type", "bridge")
        ns_run(target, "ip", "addr", "add", f"{TARGET_IP}/24", "dev", "br0")
        ns_run(target, "ip", "link", "set", "br0", "up")
        listener = subprocess.Popen(
            ["ip", "netns", "exec", target, sys.executable, "-c", LISTENER]
            + [str(p) for p in TARGET_PORTS],
            stdout=subprocess.PIPE,
            text=True,
        )
        procs.append(_ready(listener))
        # One relay into the server for every agent.
        socket_path = work / "server.sock"
        port = server.url.rsplit(":", 1)[1]
        procs.append(
            _ready(
                subprocess.Popen(
                    [sys.executable, "-c", RELAY, f"unix:{socket_path}", f"tcp:127.0.0.1:{port}"],
                    stdout=subprocess.PIPE,
                    text=True,
                )
            )
        )
        for index in range(1, n_hosts + 1):
            host = TestHost(f"host{index}", f"gvtb-{tag}-{index}", index, work / f"host{index}")
            subprocess.run(["ip", "netns", "add", host.ns], check=True, timeout=10)
            made.append(host.ns)
            _wire_host(host, target)
            procs.append(
                _ready(
                    subprocess.Popen(
                        [
                            "ip",
                            "netns",
                            "exec",
                            host.ns,
                            sys.executable,
                            "-c",
                            RELAY,
                            f"tcp:127.0.0.1:{AGENT_PORT}",
                            f"unix:{socket_path}",
                        ],
                        stdout=subprocess.PIPE,
                        text=True,
                    )
                )
            )
            host.agent = _start_agent(server, host)
            bed.hosts.append(host)
        _wait_registered(server, bed)
        yield bed
    finally:
        for host in bed.hosts:
            if host.agent is not None:
                host.agent.terminate()
                try:
                    host.agent.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    host.agent.kill()
                    host.agent.wait()
        _kill_qemus(bed)
        for proc in procs:
            proc.kill()
            proc.wait(timeout=5)
        for ns in made:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)


CONNECT = """
import socket, sys
try:
    with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3) as s:
        s.settimeout(3)
        print(s.recv(100).decode().strip() or "connected")
except OSError as exc:
    print(f"refused: {exc}")
    sys.exit(1)
"""


def connect_from(ns: str, address: str, port: int) -> tuple[bool, str]:
    """Open a TCP connection from namespace ``ns``: (it worked, what was read or why not)."""
    done = subprocess.run(
        ["ip", "netns", "exec", ns, sys.executable, "-c", CONNECT, address, str(port)],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    return done.returncode == 0, done.stdout.strip()


SCAN = """
import asyncio, errno, json, resource, sys, time
address, concurrency, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
ports = json.loads(sys.argv[4]) if len(sys.argv) > 4 else range(1, 65536)
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, concurrency + 256)), hard))
async def probe(port, gate, seen):
    async with gate:
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(address, port), timeout)
        except asyncio.TimeoutError:
            seen["filtered"].append(port)  # no answer: the SYN was dropped (or is slow)
            return
        except ConnectionRefusedError:
            seen["closed"] += 1  # an RST: the guest answered
            return
        except OSError:
            seen["filtered"].append(port)  # unreachable, as a dropped packet
            return
        seen["open"].append(port)
        writer.close()
async def main():
    gate, began = asyncio.Semaphore(concurrency), time.monotonic()
    seen = {"open": [], "closed": 0, "filtered": []}
    await asyncio.gather(*(probe(p, gate, seen) for p in ports))
    seen["open"].sort()
    seen["filtered"].sort()
    seen["seconds"] = round(time.monotonic() - began, 1)
    print(json.dumps(seen))
asyncio.run(main())
"""


@dataclass
class Scan:
    open_ports: list[int]
    closed: int  # ports that answered with a reset
    filtered: list[int]  # ports that did not answer at all
    seconds: float


def scan_from(
    ns: str,
    address: str,
    concurrency: int = 4000,
    timeout: float = 0.75,
    ports: list[int] | None = None,
) -> Scan:
    """A TCP connect scan of ``address`` from namespace ``ns``: every port (1-65535), or
    ``ports``. A port is open (connected), closed (reset) or filtered (no answer)."""
    argv = [sys.executable, "-c", SCAN, address, str(concurrency), str(timeout)]
    if ports is not None:
        argv.append(json.dumps(ports))
    done = ns_run(ns, *argv, timeout_s=300)
    found = json.loads(done.stdout)
    return Scan(found["open"], found["closed"], found["filtered"], found["seconds"])


def _wire_host(host: TestHost, target: str) -> None:
    ns_run(host.ns, "ip", "link", "set", "lo", "up")
    peer = f"tb{host.index}"
    ns_run(
        host.ns, "ip", "link", "add", "up0", "type", "veth", "peer", "name", peer, "netns", target
    )
    ns_run(host.ns, "ip", "addr", "add", f"{host.uplink_ip}/24", "dev", "up0")
    ns_run(host.ns, "ip", "link", "set", "up0", "up")
    ns_run(host.ns, "ip", "route", "add", "default", "via", TARGET_IP)
    ns_run(target, "ip", "link", "set", peer, "master", "br0")
    ns_run(target, "ip", "link", "set", peer, "up")


def _start_agent(server: RunningServer, host: TestHost) -> subprocess.Popen[bytes]:
    host.data_dir.mkdir(parents=True)
    # A token binds to the first host that registers with it: one per host.
    made = server.client().post("/api/v1/tokens", json={"user": "agent"})
    assert made.status_code == 201, made.text
    (host.data_dir / "agent.token").write_text(made.json()["token"])
    return launch_agent(host)


def kill_agent(host: TestHost) -> None:
    """SIGKILL: the agent gets no chance to tidy up (its VMs and rules stay)."""
    assert host.agent is not None
    host.agent.kill()
    host.agent.wait(timeout=10)
    host.agent = None


def launch_agent(host: TestHost) -> subprocess.Popen[bytes]:
    """Start (or start again) the agent of ``host`` in its namespace."""
    token_file = host.data_dir / "agent.token"
    log = host.log_path.open("ab")
    try:
        return subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                host.ns,
                sys.executable,
                "-m",
                "gridvm.main",
                "agent",
                "--server",
                f"http://127.0.0.1:{AGENT_PORT}",
                "--token-file",
                str(token_file),
                "--data-dir",
                str(host.data_dir),
                "--name",
                host.name,
                "--cores",
                "4",
                "--memory",
                "2G",
                "--poll-interval",
                "0.3",
                # No --network: site networking is the agent's default.
                "--zone-subnet",
                f"trusted={host.trusted_subnet}",
                "--zone-subnet",
                f"dmz=10.65.{host.index}.0/24",
                "--label",
                f"testbed_host={host.index}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "GRIDVM_ACCEL": "tcg"},
        )
    finally:
        log.close()


def _wait_registered(server: RunningServer, bed: Testbed, timeout: float = 30) -> None:
    admin = server.client()
    deadline = time.monotonic() + timeout
    wanted = {h.name for h in bed.hosts}
    while {h["name"] for h in admin.get("/api/v1/hosts").json()} != wanted:
        if time.monotonic() > deadline:
            logs = "\n".join(f"{h.name}:\n{h.log_text()[-2000:]}" for h in bed.hosts)
            raise AssertionError(f"agents did not register:\n{logs}")
        time.sleep(0.2)


def _kill_qemus(bed: Testbed) -> None:
    """QEMU survives its agent by design: end the testbed's VMs by their pid files."""
    for host in bed.hosts:
        for pidfile in (host.data_dir / "vms").glob("*/qemu.pid"):
            with suppress(ValueError, OSError):
                os.kill(int(pidfile.read_text().strip()), 9)
