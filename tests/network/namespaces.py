"""Network namespaces for tests, made and deleted by the test (even when it fails), and the
uplink of a host namespace to a "target" namespace standing in for the site's network::

    [host] up0 192.0.2.1 ── eth0 192.0.2.10 [target]
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

UPLINK_IP = "192.0.2.1"
TARGET_IP = "192.0.2.10"


def ns_exec(ns: str, *argv: str) -> None:
    subprocess.run(["ip", "netns", "exec", ns, *argv], check=True, capture_output=True, timeout=10)


@contextmanager
def namespaces(*names: str) -> Iterator[None]:
    """Namespaces ``names``, loopback up; all deleted on the way out."""
    made: list[str] = []
    try:
        for ns in names:
            subprocess.run(["ip", "netns", "add", ns], check=True, capture_output=True, timeout=10)
            made.append(ns)
            ns_exec(ns, "ip", "link", "set", "lo", "up")
        yield
    finally:
        for ns in made:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10, check=False)


def wire_uplink(host: str, target: str) -> None:
    """A veth pair: ``up0`` (UPLINK_IP/24) in ``host``, ``eth0`` (TARGET_IP/24) in ``target``."""
    ns_exec(
        host, "ip", "link", "add", "up0", "type", "veth", "peer", "name", "eth0", "netns", target
    )
    ns_exec(host, "ip", "addr", "add", f"{UPLINK_IP}/24", "dev", "up0")
    ns_exec(host, "ip", "link", "set", "up0", "up")
    ns_exec(target, "ip", "addr", "add", f"{TARGET_IP}/24", "dev", "eth0")
    ns_exec(target, "ip", "link", "set", "eth0", "up")
