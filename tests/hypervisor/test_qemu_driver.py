"""The QEMU driver against real QEMU processes (TCG).

Guests: a blank qcow2 disk (SeaBIOS finds nothing to boot, prints so on the
serial port and waits forever), and the probe guest (a boot sector that
prints to the serial port and powers the machine off).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from gridvm.common.errors import HypervisorError
from gridvm.hypervisor import probe_guest, procfs
from gridvm.hypervisor.driver import VmState
from gridvm.hypervisor.qemu_driver import QemuDriver
from gridvm.hypervisor.qmp import QmpClient, QmpTimeout
from gridvm.hypervisor.spec import MachineSpec
from tests.hypervisor.conftest import make_probe_disk, needs_qemu

pytestmark = [pytest.mark.system, needs_qemu]

SpecFactory = Callable[..., MachineSpec]
Start = Callable[[MachineSpec], int]


def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


def wait_for_state(
    driver: QemuDriver, spec: MachineSpec, want: VmState, timeout: float = 10.0
) -> VmState:
    deadline = time.monotonic() + timeout
    state = driver.state(spec)
    while state != want and time.monotonic() < deadline:
        time.sleep(0.02)
        state = driver.state(spec)
    return state


def runtime_files(spec: MachineSpec) -> set[str]:
    names = {spec.qmp_socket, spec.serial_socket, spec.pidfile}
    return {path.name for path in names if path.exists()}


def test_lifecycle(driver: QemuDriver, vm_spec: SpecFactory, start_vm: Start) -> None:
    spec = vm_spec()
    assert driver.state(spec) == "gone"
    started = time.monotonic()
    pid = start_vm(spec)
    assert driver.state(spec) == "running"
    ready = time.monotonic() - started
    assert ready < 5.0, f"spawn to QMP ready took {ready:.2f} s"

    assert procfs.read_pidfile(spec.pidfile) == pid
    assert runtime_files(spec) == {"qmp.sock", "serial.sock", "qemu.pid"}
    argv = procfs.read_cmdline(pid)
    assert argv is not None and "-daemonize" in argv
    assert procfs.parent_pid(pid) != os.getpid(), "QEMU should be daemonized"

    driver.pause(spec)
    assert driver.state(spec) == "paused"
    driver.resume(spec)
    assert driver.state(spec) == "running"

    # An agent that restarted finds the VM again with a fresh driver.
    assert QemuDriver().find_running().get(spec.vm_id) == pid
    assert QemuDriver().state(spec) == "running"

    driver.kill(spec, timeout=5.0)
    assert driver.state(spec) == "gone"
    assert not procfs.is_alive(pid)
    assert spec.vm_id not in driver.find_running()
    assert runtime_files(spec) == set()
    assert spec.console_log.exists(), "the console log is the VM's record and stays"


def test_console_log_fills_without_a_client(
    driver: QemuDriver, vm_spec: SpecFactory, start_vm: Start
) -> None:
    spec = vm_spec()
    start_vm(spec)
    assert wait_for(lambda: b"No bootable device" in spec.console_log.read_bytes()), (
        spec.console_log.read_bytes()[-500:]
    )
    assert b"SeaBIOS" in spec.console_log.read_bytes()


def test_real_guest_power_off(
    driver: QemuDriver, vm_spec: SpecFactory, start_vm: Start, short_dir: Path
) -> None:
    """The probe guest prints and powers off; -no-shutdown keeps QEMU, state shutdown."""
    disk = make_probe_disk(short_dir / "probe.qcow2")
    spec = vm_spec(disk=disk, memory_mb=128)
    pid = start_vm(spec)
    assert wait_for_state(driver, spec, "shutdown") == "shutdown"
    assert procfs.is_alive(pid), "QEMU exited: -no-shutdown is not in effect"
    assert QemuDriver().find_running().get(spec.vm_id) == pid
    assert probe_guest.DONE_MARKER in spec.console_log.read_bytes()
    with pytest.raises(HypervisorError, match="refused QMP command cont"):
        driver.resume(spec)
    driver.kill(spec)
    assert driver.state(spec) == "gone"


def test_kill_falls_back_to_signals(
    driver: QemuDriver, vm_spec: SpecFactory, start_vm: Start
) -> None:
    """With the monitor unusable (socket gone), kill still ends QEMU."""
    spec = vm_spec()
    pid = start_vm(spec)
    spec.qmp_socket.unlink()
    started = time.monotonic()
    driver.kill(spec, timeout=2.0)
    assert time.monotonic() - started < 3.0
    assert not procfs.is_alive(pid)


def test_kill_of_a_gone_vm_is_a_no_op(driver: QemuDriver, vm_spec: SpecFactory) -> None:
    spec = vm_spec()
    spec.qmp_socket.touch()
    driver.kill(spec)
    assert runtime_files(spec) == set()


def test_start_failure_carries_qemus_message(
    driver: QemuDriver, vm_spec: SpecFactory, short_dir: Path
) -> None:
    missing = short_dir / "missing.qcow2"
    spec = vm_spec(disk=missing)
    with pytest.raises(HypervisorError) as caught:
        driver.start(spec)
    message = str(caught.value)
    assert str(missing) in message
    assert "No such file or directory" in message
    assert spec.vm_id not in driver.find_running()
    assert runtime_files(spec) == set()
    assert driver.state(spec) == "gone"


def test_invalid_option_is_reported(driver: QemuDriver, vm_spec: SpecFactory) -> None:
    spec = vm_spec(machine="no-such-machine")
    with pytest.raises(HypervisorError, match="unsupported machine type"):
        driver.start(spec)
    assert spec.vm_id not in driver.find_running()


def test_missing_binary_is_reported(vm_spec: SpecFactory) -> None:
    with pytest.raises(HypervisorError, match="not found"):
        QemuDriver(qemu_binary="/nonexistent/qemu-system-x86_64").start(vm_spec())


def test_start_needs_the_run_dir(driver: QemuDriver, vm_spec: SpecFactory) -> None:
    spec = vm_spec()
    spec.disk.unlink()
    spec.run_dir.rmdir()
    with pytest.raises(HypervisorError, match="run directory"):
        driver.start(spec)


def test_double_start_is_refused_and_stale_files_are_replaced(
    driver: QemuDriver, vm_spec: SpecFactory, start_vm: Start
) -> None:
    spec = vm_spec()
    # Left over from a QEMU that died hard: a pid file of a live non-QEMU
    # process (this test) and a plain file where the socket goes.
    spec.pidfile.write_text(str(os.getpid()))
    spec.qmp_socket.write_text("stale")
    assert driver.state(spec) == "gone"
    pid = start_vm(spec)
    assert driver.state(spec) == "running"
    with pytest.raises(HypervisorError, match="already running"):
        driver.start(spec)
    assert driver.find_running()[spec.vm_id] == pid


def test_a_pid_of_another_vm_is_not_mistaken(
    driver: QemuDriver, vm_spec: SpecFactory, start_vm: Start
) -> None:
    first = vm_spec()
    other = vm_spec()
    pid = start_vm(first)
    other.pidfile.write_text(f"{pid}\n")
    assert driver.state(other) == "gone"
    driver.kill(other)
    assert procfs.is_alive(pid), "kill() of one VM ended another VM's QEMU"
    assert driver.state(first) == "running"


def test_commas_in_the_run_dir(
    driver: QemuDriver, vm_spec: SpecFactory, start_vm: Start, short_dir: Path
) -> None:
    run_dir = short_dir / "a,b"
    run_dir.mkdir()
    disk = make_probe_disk(run_dir / "d,isk.qcow2")
    spec = vm_spec(run_dir=run_dir, disk=disk, memory_mb=128)
    start_vm(spec)
    assert wait_for_state(driver, spec, "shutdown") == "shutdown"
    assert probe_guest.DONE_MARKER in spec.console_log.read_bytes()


def test_qmp_serves_one_client_at_a_time(
    driver: QemuDriver, vm_spec: SpecFactory, start_vm: Start
) -> None:
    spec = vm_spec()
    start_vm(spec)
    with QmpClient(spec.qmp_socket) as first:
        assert first.status() == "running"
        with pytest.raises(QmpTimeout, match="one client at a time"):
            QmpClient(spec.qmp_socket, connect_timeout=0.3).connect()
        with pytest.raises(HypervisorError, match="no-such-command"):
            first.command("no-such-command")
    with QmpClient(spec.qmp_socket) as again:
        assert again.status() == "running"
        again.quit()
    assert wait_for(lambda: driver.state(spec) == "gone", 5.0)


def test_controls_need_a_running_vm(driver: QemuDriver, vm_spec: SpecFactory) -> None:
    spec = vm_spec()
    for control in (driver.pause, driver.resume, driver.powerdown):
        with pytest.raises(HypervisorError, match="is not running"):
            control(spec)


def test_driver_works_from_a_worker_thread(
    driver: QemuDriver, vm_spec: SpecFactory, start_vm: Start
) -> None:
    """An asyncio agent calls the driver through asyncio.to_thread."""
    spec = vm_spec()
    start_vm(spec)

    async def from_async_code() -> VmState:
        return await asyncio.to_thread(driver.state, spec)

    assert asyncio.run(from_async_code()) == "running"
