"""MachineSpec validation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gridvm.common.errors import InvalidInput
from gridvm.hypervisor.spec import ExtraDisk, MachineSpec


def spec(**overrides: Any) -> MachineSpec:
    fields: dict[str, Any] = {
        "vm_id": "vm-1",
        "vcpus": 1,
        "memory_mb": 128,
        "disk": Path("/vms/vm-1/disk.qcow2"),
        "accelerator": "tcg",
        "run_dir": Path("/run/gridvm/vm-1"),
    }
    fields.update(overrides)
    return MachineSpec(**fields)


def test_minimal_spec_and_derived_paths() -> None:
    s = spec()
    assert s.network == "user"
    assert s.machine == "q35"
    assert s.qemu_name == "gridvm-vm-1"
    assert s.qmp_socket == Path("/run/gridvm/vm-1/qmp.sock")
    assert s.serial_socket == Path("/run/gridvm/vm-1/serial.sock")
    assert s.console_log == Path("/run/gridvm/vm-1/console.log")
    assert s.pidfile == Path("/run/gridvm/vm-1/qemu.pid")


def test_spec_is_frozen() -> None:
    s = spec()
    with pytest.raises(AttributeError):
        s.vcpus = 2  # type: ignore[misc]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"vcpus": 0}, "vcpus"),
        ({"vcpus": -1}, "vcpus"),
        ({"vcpus": True}, "vcpus"),
        ({"vcpus": 1.5}, "vcpus"),
        ({"memory_mb": 0}, "memory_mb"),
        ({"vm_id": ""}, "VM id"),
        ({"vm_id": "a,b"}, "VM id"),
        ({"vm_id": "../x"}, "VM id"),
        ({"vm_id": "x" * 65}, "VM id"),
        ({"accelerator": "hvf"}, "accelerator"),
        ({"network": "bridge"}, "network"),
        ({"machine": "q35,accel=kvm"}, "machine"),
        ({"disk": Path("relative/disk.qcow2")}, "absolute"),
        ({"disk": "/vms/disk.qcow2"}, "pathlib.Path"),
        ({"run_dir": Path("run")}, "absolute"),
        ({"seed_iso": Path("seed.iso")}, "absolute"),
        ({"initrd": Path("/k/initrd")}, "initrd needs a kernel"),
        ({"kernel_cmdline": "console=ttyS0"}, "command line needs a kernel"),
        ({"mac": "52:54:00:12:34"}, "MAC"),
        ({"mac": "52-54-00-12-34-56"}, "MAC"),
        ({"mac": "01:00:5e:00:00:01"}, "multicast"),
        ({"mac": "52:54:00:12:34:56", "network": "none"}, "without a network"),
        ({"network": "tap"}, "tap device"),
        ({"network": "tap", "tap": "gvt,script=/x"}, "tap device"),
        ({"network": "tap", "tap": "gvt0123456789abc"}, "tap device"),
        ({"tap": "gvt0"}, 'needs network="tap"'),
        ({"run_dir": Path("/" + "r" * 100)}, "too long for a unix socket"),
        ({"extra_disks": (Path("/d.raw"),)}, "ExtraDisk"),
    ],
)
def test_invalid_specs_are_rejected(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        spec(**overrides)


def test_direct_kernel_boot_fields_go_together() -> None:
    s = spec(kernel=Path("/k/vmlinuz"), initrd=Path("/k/initrd"), kernel_cmdline="console=ttyS0")
    assert s.kernel == Path("/k/vmlinuz")


def test_socket_path_limit_is_exact() -> None:
    # "/" + name + "/serial.sock" must fit in 107 bytes (sun_path minus its NUL).
    longest_ok = Path("/" + "r" * (107 - len("/serial.sock") - 1))
    assert len(bytes(longest_ok / "serial.sock")) == 107
    spec(run_dir=longest_ok)
    with pytest.raises(InvalidInput):
        spec(run_dir=Path(str(longest_ok) + "r"))


def test_extra_disk_validation() -> None:
    assert ExtraDisk(path=Path("/d.qcow2")).format == "qcow2"
    with pytest.raises(InvalidInput, match="format"):
        ExtraDisk(path=Path("/d.vmdk"), format="vmdk")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="absolute"):
        ExtraDisk(path=Path("d.raw"))


def test_errors_carry_hints() -> None:
    with pytest.raises(InvalidInput) as caught:
        spec(disk=Path("disk.qcow2"))
    assert caught.value.hint is not None
