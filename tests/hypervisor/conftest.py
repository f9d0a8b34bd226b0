"""Fixtures for the QEMU driver tests: short run dirs, disks, and VMs that always die."""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gridvm.hypervisor import probe_guest, procfs
from gridvm.hypervisor.qemu_driver import QemuDriver
from gridvm.hypervisor.spec import MachineSpec

QEMU = "qemu-system-x86_64"
HAVE_QEMU = shutil.which(QEMU) is not None and shutil.which("qemu-img") is not None
needs_qemu = pytest.mark.skipif(not HAVE_QEMU, reason="needs qemu-system-x86_64 and qemu-img")

# Every VM a test starts has an id with this prefix, so the safety net below
# can find (and kill) whatever a failed test left running.
VM_ID_PREFIX = f"pytest{os.getpid()}-"
_serial = itertools.count(1)


def new_vm_id() -> str:
    return f"{VM_ID_PREFIX}{next(_serial)}"


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A directory with a short path: unix socket paths must stay under 108 bytes."""
    path = Path(tempfile.mkdtemp(prefix="gvm"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def make_blank_disk(path: Path, size: str = "16M") -> Path:
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", str(path), size], check=True, timeout=30
    )
    return path


def make_probe_disk(path: Path) -> Path:
    """A qcow2 disk whose boot sector prints to the serial port and powers off."""
    raw = path.with_suffix(".raw")
    raw.write_bytes(probe_guest.disk_image())
    subprocess.run(
        ["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", str(raw), str(path)],
        check=True,
        timeout=30,
    )
    raw.unlink()
    return path


@pytest.fixture
def driver() -> QemuDriver:
    return QemuDriver(start_timeout=20.0, qmp_timeout=3.0)


@pytest.fixture
def start_vm(driver: QemuDriver) -> Iterator[Callable[[MachineSpec], int]]:
    """Start a VM through the driver; the VM is killed when the test ends."""
    started: list[MachineSpec] = []

    def start(spec: MachineSpec) -> int:
        started.append(spec)
        return driver.start(spec)

    yield start
    for spec in started:
        with contextlib.suppress(Exception):
            driver.kill(spec, timeout=2.0)


@pytest.fixture
def vm_spec(short_dir: Path) -> Callable[..., MachineSpec]:
    """Build a small TCG spec in a fresh run dir; keyword arguments override fields."""

    def build(**overrides: object) -> MachineSpec:
        vm_id = str(overrides.pop("vm_id", new_vm_id()))
        run_dir = short_dir / vm_id.removeprefix(VM_ID_PREFIX)
        run_dir.mkdir()
        fields: dict[str, object] = {
            "vm_id": vm_id,
            "vcpus": 1,
            "memory_mb": 64,
            "accelerator": "tcg",
            "network": "none",
            "run_dir": run_dir,
        }
        fields.update(overrides)
        if "disk" not in fields:
            fields["disk"] = make_blank_disk(run_dir / "disk.qcow2")
        return MachineSpec(**fields)  # type: ignore[arg-type]

    return build


@pytest.fixture(autouse=True)
def _kill_leftover_vms() -> Iterator[None]:
    """Whatever happens in a test, no QEMU it started survives it."""
    yield
    for vm_id, pid in procfs.iter_gridvm_qemus():
        if vm_id.startswith(VM_ID_PREFIX):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
