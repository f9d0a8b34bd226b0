"""Real `tiny` guests under QEMU (TCG), driven through the API with a real agent."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from tests.system.cloud import Cloud, qemu_pids

pytestmark = pytest.mark.system

SLEEPER = "#!/bin/sh\necho sleeping\nsleep 600\n"


def test_user_data_output_appears_in_the_console_and_its_status_decides_the_end(
    cloud: Cloud,
) -> None:
    vm = cloud.run(user_data='#!/bin/sh\necho "hello from $(hostname)"\nexit 3\n', name="greeter")[
        0
    ]
    ended = cloud.wait(vm["id"], {"done", "failed"})
    # The job's non-zero exit status makes the VM failed, with the status as the reason.
    assert (ended["state"], ended["exit_status"]) == ("failed", 3)
    assert ended["exit_reason"] == "the job exited with status 3"
    console = cloud.console(vm["id"])
    assert "hello from greeter" in console
    assert "gridvm-guest: user-data exited with status 3" in console
    # A multi-mode VM leaves nothing behind on its host.
    assert not (cloud.vm_dir(vm["id"]) / "disk.qcow2").exists()
    assert qemu_pids(vm["id"]) == []


def test_two_vms_share_one_cached_image_through_overlays(cloud: Cloud) -> None:
    vms = cloud.run(count=2, user_data=SLEEPER)
    for vm in vms:
        cloud.wait(vm["id"], {"running"})
        cloud.wait_console(vm["id"], "sleeping")
    image = cloud.admin.get("/api/v1/images/tiny").json()
    cached_base = cloud.agent.data_dir / "cache" / image["digest"].removeprefix("sha256:") / "blob"
    assert cached_base.is_file()
    # Downloaded once for both VMs (the agent logs every download).
    assert cloud.agent.log_text().count(f"fetching {image['digest']}") == 1
    for vm in vms:
        disk = cloud.vm_dir(vm["id"]) / "disk.qcow2"
        info = json.loads(
            subprocess.run(
                ["qemu-img", "info", "-U", "--output=json", "-f", "qcow2", str(disk)],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        # Each disk is a copy-on-write overlay over the one cached base, not a copy.
        assert info["backing-filename"] == str(cached_base)
        assert info["backing-filename-format"] == "qcow2"
    host = cloud.admin.get("/api/v1/hosts/testhost").json()
    assert image["digest"] in host["cached_images"]


def test_terminate_ends_qemu_and_removes_the_multi_mode_disk(cloud: Cloud) -> None:
    vm = cloud.run(user_data=SLEEPER)[0]
    cloud.wait(vm["id"], {"running"})
    cloud.wait_console(vm["id"], "sleeping")
    assert len(qemu_pids(vm["id"])) == 1
    assert (cloud.vm_dir(vm["id"]) / "disk.qcow2").exists()
    cloud.admin.post(f"/api/v1/vms/{vm['id']}/terminate")
    ended = cloud.wait(vm["id"], {"cancelled"})
    assert ended["exit_reason"] == "terminated by admin"
    deadline = time.monotonic() + 10
    while qemu_pids(vm["id"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert qemu_pids(vm["id"]) == []
    assert not (cloud.vm_dir(vm["id"]) / "disk.qcow2").exists()


def test_single_mode_vm_keeps_its_disk_across_stop_and_start(cloud: Cloud) -> None:
    script = (
        "#!/bin/sh\n"
        'if [ -f /root/marker ]; then echo "found $(cat /root/marker)"; else\n'
        '  echo kept-$$-$(date +%s) > /root/marker; sync; echo "wrote $(cat /root/marker)"; fi\n'
        "sleep 600\n"
    )
    vm = cloud.run(mode="single", user_data=script)[0]
    first = cloud.wait_console(vm["id"], "wrote kept-")
    marker = first.split("wrote ", 1)[1].split()[0]
    cloud.admin.post(f"/api/v1/vms/{vm['id']}/stop")
    stopped = cloud.wait(vm["id"], {"stopped"})
    assert stopped["exit_reason"] == "stopped on request"
    assert "power button" in cloud.console(vm["id"])
    assert qemu_pids(vm["id"]) == []
    assert (cloud.vm_dir(vm["id"]) / "disk.qcow2").exists()
    cloud.admin.post(f"/api/v1/vms/{vm['id']}/start")
    cloud.wait_console(vm["id"], f"found {marker}")
    assert cloud.vm(vm["id"])["state"] == "running"


def test_walltime_expiry_ends_the_vm(cloud: Cloud) -> None:
    vm = cloud.run(user_data=SLEEPER, walltime_s=4)[0]
    cloud.wait(vm["id"], {"running"})
    ended = cloud.wait(vm["id"], {"expired", "done", "failed"}, timeout=120)
    assert ended["state"] == "expired"
    assert "walltime" in ended["exit_reason"]
    assert qemu_pids(vm["id"]) == []


def _console_settles(cloud: Cloud, vm_id: str, quiet_s: float = 2.5, timeout: float = 30) -> str:
    """The console once it has not changed for ``quiet_s`` (a paused guest prints nothing)."""
    deadline = time.monotonic() + timeout
    last = cloud.console(vm_id)
    since = time.monotonic()
    while time.monotonic() - since < quiet_s:
        assert time.monotonic() < deadline, "the console never stopped changing"
        time.sleep(0.25)
        now = cloud.console(vm_id)
        if now != last:
            last, since = now, time.monotonic()
    return last


def test_suspend_and_resume(cloud: Cloud) -> None:
    script = "#!/bin/sh\ni=0\nwhile true; do i=$((i+1)); echo tick $i; sleep 1; done\n"
    vm = cloud.run(user_data=script)[0]
    cloud.wait_console(vm["id"], "tick 2")
    cloud.admin.post(f"/api/v1/vms/{vm['id']}/suspend")
    cloud.wait(vm["id"], {"suspended"})
    # A running guest ticks every second, so its console can never stay quiet this long.
    frozen = _console_settles(cloud, vm["id"]).count("tick")
    cloud.admin.post(f"/api/v1/vms/{vm['id']}/resume")
    cloud.wait(vm["id"], {"running"})
    cloud.wait_console(vm["id"], f"tick {frozen + 2}")


def test_agent_killed_and_restarted_re_adopts_its_running_vm(cloud: Cloud) -> None:
    vm = cloud.run(user_data=SLEEPER)[0]
    cloud.wait(vm["id"], {"running"})
    cloud.wait_console(vm["id"], "sleeping")
    pids = qemu_pids(vm["id"])
    assert len(pids) == 1
    cloud.agent.kill()
    time.sleep(1)
    assert qemu_pids(vm["id"]) == pids, "the VM died with its agent"
    cloud.agent.start()
    deadline = time.monotonic() + 30
    while "re-adopted VM " + vm["id"] not in cloud.agent.log_text():
        assert time.monotonic() < deadline, cloud.agent.log_text()
        time.sleep(0.2)
    assert cloud.vm(vm["id"])["state"] == "running"
    assert qemu_pids(vm["id"]) == pids
    cloud.admin.post(f"/api/v1/vms/{vm['id']}/terminate")
    cloud.wait(vm["id"], {"cancelled"})


def test_redeploy_runs_the_vm_again_from_its_image(cloud: Cloud) -> None:
    script = (
        "#!/bin/sh\n"
        "if [ -f /root/seen ]; then echo 'old disk'; else echo 'fresh disk'; fi\n"
        "touch /root/seen\n"
    )
    vm = cloud.run(user_data=script)[0]
    first = cloud.wait(vm["id"], {"done", "failed"})
    assert first["state"] == "done" and first["attempt"] == 1
    assert "fresh disk" in cloud.console(vm["id"])
    again = cloud.admin.post(f"/api/v1/vms/{vm['id']}/redeploy").json()
    assert (again["state"], again["attempt"]) == ("pending", 2)
    second = cloud.wait(vm["id"], {"done", "failed"})
    assert second["state"] == "done" and second["attempt"] == 2
    console = cloud.console(vm["id"])
    # A new console for the new attempt, on a new disk from the image.
    assert console.count("gridvm-guest: ready") == 1
    assert "fresh disk" in console and "old disk" not in console
