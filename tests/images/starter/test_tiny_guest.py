"""The tiny image boots in QEMU and keeps the guest contract (system tests).

Each test boots real TCG guests from a fresh qcow2 overlay, with a NoCloud
seed ISO made here, and checks only what a user can see: the serial console
and whether QEMU exits.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gridvm.images.starter import build_tiny, load_manifest

from .conftest import StartVM
from .guest_vm import POWER_BUTTON, READY, make_seed_iso, user_data_exited

pytestmark = pytest.mark.system

BOOT_TIMEOUT_S = 30.0
RUN_TIMEOUT_S = 40.0
POWERDOWN_TIMEOUT_S = 20.0


def meta_data(hostname: str) -> str:
    return f"instance-id: iid-{hostname}\nlocal-hostname: {hostname}\n"


def test_user_data_output_then_status_then_power_off(start_vm: StartVM, tmp_path: Path) -> None:
    script = (
        "#!/bin/sh\n"
        "echo first line from user-data\n"
        'echo "cwd=$(pwd) home=$HOME path=$PATH"\n'
        "echo on stderr >&2\n"
        "printf 'last words, no newline'\n"
        "exit 3\n"
    )
    seed = make_seed_iso(tmp_path / "seed.iso", meta_data("runner"), script)
    vm = start_vm(seed=seed)

    vm.wait_for_line(READY, BOOT_TIMEOUT_S)
    vm.wait_for_exit(RUN_TIMEOUT_S)

    lines = vm.lines()
    expected = [
        READY,
        "first line from user-data",
        "cwd=/root home=/root path=/bin:/sbin:/usr/bin:/usr/sbin",
        "on stderr",
        "last words, no newline",
        user_data_exited(3),
    ]
    positions = [lines.index(line) for line in expected]
    assert positions == sorted(positions), vm.console()


def test_hostname_comes_from_meta_data(start_vm: StartVM, tmp_path: Path) -> None:
    script = (
        "#!/bin/sh\n"
        'echo "hostname=$(hostname)"\n'
        'echo "etc-hostname=$(cat /etc/hostname)"\n'
        "echo \"address=$(ip -4 -o addr show dev eth0 | awk '{print $4}')\"\n"
    )
    seed = make_seed_iso(tmp_path / "seed.iso", meta_data("tiny-test-42"), script)
    vm = start_vm(seed=seed, nic=True)

    vm.wait_for_exit(BOOT_TIMEOUT_S + RUN_TIMEOUT_S)

    lines = vm.lines()
    assert "hostname=tiny-test-42" in lines, vm.console()
    assert "etc-hostname=tiny-test-42" in lines, vm.console()
    # QEMU user networking hands out 10.0.2.15 by DHCP
    assert "address=10.0.2.15/24" in lines, vm.console()
    assert user_data_exited(0) in lines


def test_root_disk_files_survive_power_off(start_vm: StartVM, tmp_path: Path) -> None:
    content = f"written at {time.time_ns()}"
    write = f"#!/bin/sh\necho '{content}' > /root/marker\n"
    first = start_vm(seed=make_seed_iso(tmp_path / "write.iso", meta_data("disk"), write))
    first.wait_for_exit(BOOT_TIMEOUT_S + RUN_TIMEOUT_S)
    assert user_data_exited(0) in first.lines(), first.console()

    read = '#!/bin/sh\necho "marker: $(cat /root/marker)"\n'
    second = start_vm(
        overlay=first.overlay,
        seed=make_seed_iso(tmp_path / "read.iso", meta_data("disk"), read),
    )
    second.wait_for_exit(BOOT_TIMEOUT_S + RUN_TIMEOUT_S)
    assert f"marker: {content}" in second.lines(), second.console()


def test_without_user_data_stays_up_until_power_button(start_vm: StartVM) -> None:
    vm = start_vm()  # no seed disk at all: the guest carries on without one

    ready_after = vm.wait_for_line(READY, BOOT_TIMEOUT_S)
    time.sleep(1.0)
    assert vm.process is not None and vm.process.poll() is None, vm.console()

    vm.qmp("system_powerdown")
    exited_after = vm.wait_for_exit(POWERDOWN_TIMEOUT_S)

    assert POWER_BUTTON in vm.lines(), vm.console()
    assert exited_after - ready_after < POWERDOWN_TIMEOUT_S


def test_power_button_stops_running_user_data(start_vm: StartVM, tmp_path: Path) -> None:
    script = "#!/bin/sh\necho long job started\nsleep 600\necho long job finished\n"
    vm = start_vm(seed=make_seed_iso(tmp_path / "seed.iso", meta_data("busy"), script))
    vm.wait_for_line("long job started", BOOT_TIMEOUT_S)

    vm.qmp("system_powerdown")
    vm.wait_for_exit(POWERDOWN_TIMEOUT_S)

    lines = vm.lines()
    assert POWER_BUTTON in lines, vm.console()
    assert "long job finished" not in lines


def test_poweroff_from_user_data_shuts_down_cleanly(start_vm: StartVM, tmp_path: Path) -> None:
    script = "#!/bin/sh\necho asking to power off\npoweroff\nsleep 600\necho not reached\n"
    vm = start_vm(seed=make_seed_iso(tmp_path / "seed.iso", meta_data("quitter"), script))

    vm.wait_for_exit(BOOT_TIMEOUT_S + RUN_TIMEOUT_S)

    lines = vm.lines()
    assert "gridvm-guest: poweroff requested, shutting down" in lines, vm.console()
    assert "not reached" not in lines


def test_second_build_is_cached(tiny_image: Path) -> None:
    manifest = tiny_image / "manifest.json"
    before = manifest.stat().st_mtime_ns

    started = time.monotonic()
    again = build_tiny(tiny_image.parent)
    elapsed = time.monotonic() - started

    assert again == tiny_image
    assert manifest.stat().st_mtime_ns == before
    assert elapsed < 10.0
    assert load_manifest(again).name == "tiny"
