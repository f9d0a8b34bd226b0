"""Golden tests for the QEMU command line (regenerate with GRIDVM_UPDATE_GOLDEN=1)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gridvm.hypervisor.qemu_argv import build_argv, qemu_opt_value
from gridvm.hypervisor.spec import ExtraDisk, MachineSpec

GOLDEN_DIR = Path(__file__).parent / "golden"
VMS = Path("/var/lib/gridvm/vms")
IMAGES = Path("/var/lib/gridvm/images")

GOLDEN_SPECS: dict[str, MachineSpec] = {
    # A tiny Linux guest: direct kernel boot, NoCloud seed ISO, user-mode network, and the
    # guest channel the agent relays to the server.
    "direct_boot_tcg": MachineSpec(
        vm_id="vm-0001",
        vcpus=2,
        memory_mb=512,
        disk=VMS / "vm-0001" / "disk.qcow2",
        seed_iso=VMS / "vm-0001" / "seed.iso",
        kernel=IMAGES / "sha256-0a1b" / "vmlinuz",
        initrd=IMAGES / "sha256-0a1b" / "initrd.img",
        kernel_cmdline="console=ttyS0 root=/dev/vda rw no_timer_check",
        accelerator="tcg",
        run_dir=Path("/run/gridvm/vm-0001"),
        network="user",
        mac="52:54:00:12:34:56",
        guest_channel=True,
    ),
    # Boot from the disk (SeaBIOS), no seed, no network at all.
    "disk_only_no_network": MachineSpec(
        vm_id="vm-0002",
        vcpus=1,
        memory_mb=256,
        disk=VMS / "vm-0002" / "disk.qcow2",
        accelerator="tcg",
        run_dir=Path("/run/gridvm/vm-0002"),
        network="none",
    ),
    # KVM, another machine type, an extra read-only raw disk.
    "kvm_disk_boot": MachineSpec(
        vm_id="vm-0003",
        vcpus=4,
        memory_mb=4096,
        disk=VMS / "vm-0003" / "disk.qcow2",
        seed_iso=VMS / "vm-0003" / "seed.iso",
        accelerator="kvm",
        run_dir=Path("/run/gridvm/vm-0003"),
        machine="pc",
        extra_disks=(ExtraDisk(path=VMS / "vm-0003" / "data.raw", format="raw", read_only=True),),
    ),
    # Site networking: the agent's tap on a zone bridge (no user-mode network).
    "tap_network": MachineSpec(
        vm_id="vm-0005",
        vcpus=1,
        memory_mb=256,
        disk=VMS / "vm-0005" / "disk.qcow2",
        seed_iso=VMS / "vm-0005" / "seed.iso",
        kernel=IMAGES / "sha256-0a1b" / "vmlinuz",
        kernel_cmdline="console=ttyS0 root=/dev/vda rw",
        accelerator="tcg",
        run_dir=Path("/run/gridvm/vm-0005"),
        network="tap",
        tap="gvt1a2b3c4d5e",
        mac="52:54:00:ab:cd:ef",
        guest_channel=True,
    ),
    # A job with its results disk and a user's volume (persistent, write-back cache).
    "job_with_volume": MachineSpec(
        vm_id="vm-0004",
        vcpus=1,
        memory_mb=192,
        disk=VMS / "vm-0004" / "disk.qcow2",
        seed_iso=VMS / "vm-0004" / "seed.iso",
        kernel=IMAGES / "sha256-0a1b" / "vmlinuz",
        kernel_cmdline="console=ttyS0 root=/dev/vda rw",
        accelerator="tcg",
        run_dir=Path("/run/gridvm/vm-0004"),
        network="user",
        mac="52:54:00:12:34:57",
        guest_channel=True,
        extra_disks=(
            ExtraDisk(path=VMS / "vm-0004" / "output.raw", format="raw", serial="gridvm-output"),
            ExtraDisk(
                path=Path("/var/lib/gridvm/volumes/vol-0a1b2c3d4e5f.qcow2"),
                serial="vol-0a1b2c3d4e5f",
                cache="writeback",
            ),
        ),
    ),
}


@pytest.mark.parametrize("name", sorted(GOLDEN_SPECS))
def test_argv_matches_golden(name: str) -> None:
    argv = build_argv(GOLDEN_SPECS[name])
    golden = GOLDEN_DIR / f"{name}.txt"
    text = "".join(f"{arg}\n" for arg in argv)
    if os.environ.get("GRIDVM_UPDATE_GOLDEN") == "1":
        golden.write_text(text, encoding="utf-8")
    assert golden.exists(), f"no golden file {golden}: run with GRIDVM_UPDATE_GOLDEN=1"
    assert text == golden.read_text(encoding="utf-8")


def test_argv_is_a_list_of_strings_starting_with_the_binary() -> None:
    binary = "/opt/qemu/bin/qemu-system-x86_64"
    argv = build_argv(GOLDEN_SPECS["direct_boot_tcg"], qemu_binary=binary)
    assert argv[0] == binary
    assert all(isinstance(arg, str) and arg for arg in argv)


def test_build_argv_is_pure() -> None:
    spec = GOLDEN_SPECS["direct_boot_tcg"]
    assert build_argv(spec) == build_argv(spec)


def test_accelerator_picks_the_cpu_model() -> None:
    tcg = build_argv(GOLDEN_SPECS["direct_boot_tcg"])
    kvm = build_argv(GOLDEN_SPECS["kvm_disk_boot"])
    assert tcg[tcg.index("-cpu") + 1] == "max"
    assert kvm[kvm.index("-cpu") + 1] == "host"
    assert "accel=kvm" in kvm[kvm.index("-machine") + 1]


def test_qemu_opt_value_doubles_commas() -> None:
    assert qemu_opt_value("/a,b/c,,d") == "/a,,b/c,,,,d"
    assert qemu_opt_value(Path("/plain/path")) == "/plain/path"


def test_commas_in_paths_cannot_inject_options() -> None:
    run_dir = Path("/run/g,file=/etc/shadow")
    spec = MachineSpec(
        vm_id="vm-comma",
        vcpus=1,
        memory_mb=64,
        disk=Path("/v/a,format=raw/disk.qcow2"),
        kernel=Path("/k,x/vmlinuz"),
        accelerator="tcg",
        run_dir=run_dir,
    )
    argv = build_argv(spec)
    blockdev = argv[argv.index("-blockdev") + 1]
    assert "file.filename=/v/a,,format=raw/disk.qcow2" in blockdev
    assert argv[argv.index("-qmp") + 1] == (
        "unix:/run/g,,file=/etc/shadow/qmp.sock,server=on,wait=off"
    )
    chardev = argv[argv.index("-chardev") + 1]
    assert "path=/run/g,,file=/etc/shadow/serial.sock," in chardev
    assert "logfile=/run/g,,file=/etc/shadow/console.log," in chardev
    # -kernel and -pidfile take their value verbatim: no escaping there.
    assert argv[argv.index("-kernel") + 1] == "/k,x/vmlinuz"
    assert argv[argv.index("-pidfile") + 1] == "/run/g,file=/etc/shadow/qemu.pid"


def test_kernel_cmdline_is_one_argument() -> None:
    spec = GOLDEN_SPECS["direct_boot_tcg"]
    argv = build_argv(spec)
    assert argv[argv.index("-append") + 1] == spec.kernel_cmdline


def _disks(argv: list[str]) -> list[tuple[str, str]]:
    """(-blockdev, -device) value pairs in command-line order."""
    blockdevs = [argv[i + 1] for i, a in enumerate(argv) if a == "-blockdev"]
    devices = [
        argv[i + 1] for i, a in enumerate(argv) if a == "-device" and "drive=" in argv[i + 1]
    ]
    return list(zip(blockdevs, devices, strict=True))


def test_a_volume_comes_last_with_its_serial_format_and_cache_spelled_out() -> None:
    disks = _disks(build_argv(GOLDEN_SPECS["job_with_volume"]))
    serials = [d.split("serial=")[1].split(",")[0] for _, d in disks]
    assert serials == ["gridvm-root", "gridvm-seed", "gridvm-output", "vol-0a1b2c3d4e5f"]
    blockdev, device = disks[-1]
    assert blockdev.startswith("driver=qcow2,")
    assert "read-only=off" in blockdev
    assert "cache.direct=off,cache.no-flush=off" in blockdev
    assert "file.filename=/var/lib/gridvm/volumes/vol-0a1b2c3d4e5f.qcow2" in blockdev
    assert "write-cache=on" in device
    # Disks without a cache mode keep QEMU's -blockdev defaults, as before.
    assert "cache." not in disks[2][0]


@pytest.mark.parametrize(
    ("cache", "direct", "write_cache"),
    [("writeback", "off", "on"), ("none", "on", "on"), ("writethrough", "off", "off")],
)
def test_cache_modes_map_to_blockdev_and_device_options(
    cache: str, direct: str, write_cache: str
) -> None:
    spec = MachineSpec(
        vm_id="vm-cache",
        vcpus=1,
        memory_mb=64,
        disk=Path("/v/disk.qcow2"),
        accelerator="tcg",
        run_dir=Path("/run/v"),
        extra_disks=(ExtraDisk(path=Path("/v/vol.qcow2"), cache=cache),),  # type: ignore[arg-type]
    )
    blockdev, device = _disks(build_argv(spec))[-1]
    assert f"cache.direct={direct}" in blockdev
    assert f"write-cache={write_cache}" in device
