"""What goes wrong on a host is cleaned up and told to the user."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.system.cloud import Cloud, qemu_pids, run_cloud

pytestmark = pytest.mark.system

SLEEPER = "#!/bin/sh\necho sleeping\nsleep 600\n"


@pytest.fixture
def broken_qemu_cloud(
    tmp_path_factory: pytest.TempPathFactory, starter_dir: Path
) -> Iterator[Cloud]:
    """A host whose QEMU refuses to start, as a misconfigured or broken hypervisor would."""
    tmp = tmp_path_factory.mktemp("b")
    fake = tmp / "qemu-system-x86_64"
    message = "qemu-system-x86_64: -blockdev node-name=disk0: Could not open: Permission denied"
    fake.write_text(f"#!/bin/sh\necho '{message}' >&2\nexit 1\n")
    fake.chmod(0o755)
    with run_cloud(tmp, starter_dir, agent_args=["--qemu-binary", str(fake)]) as cloud:
        yield cloud


def test_failed_start_leaves_no_disk_iso_pin_or_process(broken_qemu_cloud: Cloud) -> None:
    cloud = broken_qemu_cloud
    vm = cloud.run(user_data=SLEEPER)[0]
    failed = cloud.wait(vm["id"], {"failed", "running", "done"})
    assert failed["state"] == "failed"
    assert "Could not open: Permission denied" in failed["exit_reason"]
    run_dir = cloud.vm_dir(vm["id"])
    assert not (run_dir / "disk.qcow2").exists()
    assert not (run_dir / "seed.iso").exists()
    pins = list((cloud.agent.data_dir / "cache").glob("*/pins/*"))
    assert pins == [], f"cache pins left behind: {pins}"
    assert qemu_pids(vm["id"]) == []
    # The image itself stays cached for the next VM: only the VM's own parts are undone.
    image = cloud.admin.get("/api/v1/images/tiny").json()
    assert (
        cloud.agent.data_dir / "cache" / image["digest"].removeprefix("sha256:") / "blob"
    ).exists()


def test_vm_lost_while_the_agent_was_down_is_marked_failed(cloud: Cloud) -> None:
    vm = cloud.run(user_data=SLEEPER)[0]
    cloud.wait_console(vm["id"], "sleeping")
    cloud.agent.kill()
    for pid in qemu_pids(vm["id"]):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while qemu_pids(vm["id"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    cloud.agent.start()
    failed = cloud.wait(vm["id"], {"failed", "done"})
    assert failed["state"] == "failed"
    assert "QEMU was not running when the agent restarted" in failed["exit_reason"]
    assert not (cloud.vm_dir(vm["id"]) / "disk.qcow2").exists()
