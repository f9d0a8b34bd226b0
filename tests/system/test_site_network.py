"""Real guests (tiny, debian-12-minimal) on site networking: a tap on a zone bridge, the
agent's rules, real QEMU.

Everything network-side happens in namespaces this test makes and deletes::

    [host ns]  gvbr-trusted 10.64.0.1 ── tap ── (guest 10.64.0.2, QEMU runs here)
               up0 192.0.2.1 (default route) ── eth0 192.0.2.10 [target ns: ports 8080, 8081]

The agent's machinery (Machines with SiteNetwork, ip and nft in the host namespace) boots
the guest with ``192.0.2.10:8080`` whitelisted and its address in the seed (no DHCP); the
guest's job tries both ports and prints what happened on its console, which the test reads.
debian-12-minimal is built once into build/starter (about a minute the first time).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gridvm.agent.machines import Machines
from gridvm.agent.network import SiteNetwork, zone_setups
from gridvm.agent.reconcile import Action, Do
from gridvm.agent.records import RecordStore
from gridvm.common.config import DEFAULT_ZONE_SUBNETS
from gridvm.hypervisor.qemu_driver import QemuDriver
from gridvm.hypervisor.spec import CONSOLE_LOG_NAME
from gridvm.images.cache import ImageCache
from gridvm.images.debian.template import build_debian_minimal
from gridvm.images.digests import sha256_file
from gridvm.network.links import Links
from gridvm.network.nft import Nft
from gridvm.schemas.agent import Assignment, DesiredState, LocalState
from gridvm.schemas.hosts import Zone
from gridvm.schemas.vms import VmMode
from tests.network.namespaces import TARGET_IP, namespaces, ns_exec, wire_uplink

pytestmark = pytest.mark.system

ALLOWED, BLOCKED = 8080, 8081
PORTS = (ALLOWED, BLOCKED)
LISTENER = """
import socket, sys, threading
def serve(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(16)
    while True:
        c, peer = s.accept(); c.sendall(b"hi-from-" + str(port).encode() + b"\\n"); c.close()
for p in sys.argv[1:]:
    threading.Thread(target=serve, args=(int(p),), daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
"""
JOB = f"""#!/bin/sh
ip -4 -o addr show scope global
probe() {{  # busybox has nc; Debian minimal has bash's /dev/tcp
    if command -v nc >/dev/null 2>&1; then
        nc -w 3 192.0.2.10 "$1" </dev/null
    else
        timeout 3 bash -c "cat </dev/tcp/192.0.2.10/$1"
    fi
}}
for port in {ALLOWED} {BLOCKED}; do
    if answer=$(probe $port) && [ -n "$answer" ]; then
        echo "PORT $port OPEN $answer"
    else
        echo "PORT $port CLOSED"
    fi
done
cat /etc/resolv.conf
"""


@dataclass
class Bed:
    host: str
    target: str
    work: Path


@pytest.fixture
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    tag = uuid.uuid4().hex[:6]
    host, target = f"gvsh-{tag}", f"gvst-{tag}"
    with namespaces(host, target):
        wire_uplink(host, target)
        ns_exec(host, "ip", "route", "add", "default", "via", TARGET_IP)
        listener = subprocess.Popen(
            ["ip", "netns", "exec", target, sys.executable, "-c", LISTENER, *map(str, PORTS)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert listener.stdout is not None and listener.stdout.readline().strip() == "ready"
            # A short base path keeps QEMU's unix socket paths under the 108-byte limit.
            yield Bed(host, target, tmp_path_factory.mktemp("sn"))
        finally:
            listener.kill()
            listener.wait(timeout=5)


@pytest.fixture(params=["tiny", "debian-12-minimal"])
def image_dir(request: pytest.FixtureRequest, starter_dir: Path) -> Path:
    if request.param == "debian-12-minimal":
        build_debian_minimal(starter_dir)  # cached in build/starter
    return starter_dir / request.param


@pytest.mark.timeout(600)
def test_a_guest_gets_its_static_address_and_reaches_its_whitelisted_port_only(
    bed: Bed, image_dir: Path
) -> None:
    manifest = json.loads((image_dir / "manifest.json").read_text())
    blobs = {
        f"sha256:{sha256_file(image_dir / name)}": image_dir / name
        for name in (manifest["disk"], manifest["kernel"], manifest["initrd"])
    }
    disk, kernel, initrd = list(blobs)
    # QEMU must open the tap in the host namespace: run it there.
    qemu = bed.work / "qemu-in-ns"
    qemu.write_text(f'#!/bin/sh\nexec ip netns exec {bed.host} qemu-system-x86_64 "$@"\n')
    qemu.chmod(0o755)
    prefix = ("ip", "netns", "exec", bed.host)
    records = RecordStore(bed.work / "vms")
    network = SiteNetwork(
        records,
        zone_setups(("trusted",), DEFAULT_ZONE_SUBNETS),
        links=Links(prefix),
        nft=Nft(prefix),
    )
    driver = QemuDriver(str(qemu))
    a = Assignment(
        vm_id="vm-sitenet1",
        attempt=1,
        desired=DesiredState.running,
        mode=VmMode.multi,
        vcpus=1,
        memory_mb=max(192, int(manifest["min_memory_mb"]) + 128),
        disk_bytes=None,
        image_digest=disk,
        kernel_digest=kernel,
        initrd_digest=initrd,
        kernel_cmdline=manifest["kernel_cmdline"],
        hostname="sitenet",
        user_data=JOB,
        stop_grace_s=10,
        zone=Zone.trusted,
        egress=[f"192.0.2.10:{ALLOWED}"],
    )
    with ImageCache(bed.work / "cache", 1024**3) as cache:
        machines = Machines(
            records,
            cache,
            driver,
            lambda digest, target: shutil.copyfile(blobs[digest], target),
            "tcg",
            network=network,
        )
        network.setup()
        try:
            machines.apply(Action(Do.start, a.vm_id, a), None)
            record = records.load_all()[a.vm_id]
            assert (record.state, record.detail) == (LocalState.running, None)
            console = records.dir_of(a.vm_id) / CONSOLE_LOG_NAME
            deadline = time.monotonic() + 120
            text = ""
            while time.monotonic() < deadline and "user-data exited" not in text:
                time.sleep(0.5)
                text = console.read_text(errors="replace") if console.exists() else ""
            assert "user-data exited" in text, text[-3000:]
        finally:
            machines.apply(Action(Do.delete, a.vm_id, a), records.load_all().get(a.vm_id))
    assert "inet 10.64.0.2/24" in text, text[-3000:]
    assert "nameserver 10.64.0.1" in text
    assert f"PORT {ALLOWED} OPEN hi-from-{ALLOWED}" in text, text[-3000:]
    assert f"PORT {BLOCKED} CLOSED" in text, text[-3000:]
    # The VM's end took its tap and rules away.
    assert "chain from-" not in network.live_text()


@pytest.mark.timeout(300)
def test_gridvm_up_with_site_networking_runs_its_vms_behind_the_rules(
    bed: Bed, starter_dir: Path
) -> None:
    """The one-machine cloud in the host namespace, as a user starts it, with --network site."""
    data, job = bed.work / "up", bed.work / "job.sh"
    job.write_text(JOB)
    gridvm = [sys.executable, "-m", "gridvm.main"]
    argv = [
        "ip", "netns", "exec", bed.host, *gridvm, "up", "--network", "site",
        "--data-dir", str(data), "--listen", "127.0.0.1:8750", "--starter-dir", str(starter_dir),
        "--zone-egress", f"trusted=192.0.2.10:{BLOCKED}/udp",
    ]  # fmt: skip
    with (bed.work / "up.log").open("wb") as up_log:
        up = subprocess.Popen(
            argv,
            stdout=subprocess.DEVNULL,
            stderr=up_log,
            env={**os.environ, "GRIDVM_ACCEL": "tcg"},
        )
    try:
        token = data / "admin.token"
        deadline = time.monotonic() + 60
        while not token.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        env = {
            **os.environ,
            "GRIDVM_URL": "http://127.0.0.1:8750",
            "GRIDVM_TOKEN": token.read_text().strip(),
            "GRIDVM_CONFIG": str(bed.work / "cli.toml"),
        }

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                ["ip", "netns", "exec", bed.host, *gridvm, *args],
                capture_output=True,
                text=True,
                env=env,
                timeout=240,
                check=False,
            )

        deadline = time.monotonic() + 60
        while "online" not in cli("host", "list").stdout and time.monotonic() < deadline:
            time.sleep(0.5)
        run = cli(
            "vm", "run", "tiny", "--wait", "--user-data", str(job),
            "--allow-egress", f"192.0.2.10:{ALLOWED}",
        )  # fmt: skip
        log = (bed.work / "up.log").read_text(errors="replace")[-3000:]
        assert run.returncode == 0, (run.stdout, run.stderr, log)
        vm_id = json.loads(cli("-o", "json", "vm", "list").stdout)[0]["id"]
        console = cli("vm", "console", vm_id).stdout
        shown = json.loads(cli("-o", "json", "vm", "show", vm_id).stdout)
    finally:
        up.terminate()
        up.wait(timeout=30)
    assert "inet 10.64.0.2/24" in console, console[-3000:]
    assert f"PORT {ALLOWED} OPEN hi-from-{ALLOWED}" in console, console[-3000:]
    assert f"PORT {BLOCKED} CLOSED" in console, console[-3000:]
    assert (shown["egress"], shown["zone_egress"]) == (
        [f"192.0.2.10:{ALLOWED}"],
        [f"192.0.2.10:{BLOCKED}/udp"],
    )
