"""The QEMU command line, built as data from a :class:`MachineSpec`.

:func:`build_argv` is pure (no I/O, no environment) so it can be golden-tested
argument by argument. The result is passed to ``subprocess`` as a list: no
shell ever parses it. Values that QEMU itself parses as ``key=value,...``
option strings go through :func:`qemu_opt_value`, which doubles commas the way
QEMU's option parser expects, so a path with a comma cannot inject options.

Choices worth knowing (each verified against QEMU 7.2 on Debian 12):

- ``-daemonize`` + ``-pidfile``: the parent returns only once the VM is set
  up, so start errors arrive synchronously on stderr, and the VM survives
  agent restarts (the agent re-adopts it by its ``-name``).
- ``-no-shutdown`` + ``-no-reboot``: a guest power-off (or reboot) leaves
  QEMU alive in run state ``shutdown``, so the agent can tell a clean
  power-off from a crash even after restarting.
- ``graphics=off`` on the machine makes SeaBIOS mirror its messages to the
  serial port, so "No bootable device" and friends land in the console log.
- The serial port is a listening unix socket with a log file: everything the
  guest prints is logged even while no console client is attached.
- The guest channel is a virtio-serial port on a second listening unix socket; the
  agent connects to it and relays the guest's requests to the server (see
  :mod:`gridvm.agent.guest_relay`), so a VM with no network can still report.
- ``-netdev tap,...,script=no,downscript=no``: the agent creates the tap, bridges it
  and puts the nftables rules for it in place before QEMU starts, and removes it after
  QEMU ends; QEMU never runs a helper script (and needs no privilege to do so).
- ``-sandbox on,obsolete=deny,resourcecontrol=deny``: ``spawn=deny`` kills
  QEMU at the ``-daemonize`` fork, and ``elevateprivileges=deny`` kills it at
  the ``setsid`` that follows (both SIGSYS, exit status 1 and no message), so
  those two cannot be combined with ``-daemonize``.
"""

from __future__ import annotations

from pathlib import Path

from gridvm.hypervisor.spec import CacheMode, MachineSpec

DEFAULT_QEMU_BINARY = "qemu-system-x86_64"

SANDBOX = "on,obsolete=deny,resourcecontrol=deny"

ROOT_DISK_NODE = "disk0"
SEED_NODE = "seed"
NIC_NETDEV = "net0"
SERIAL_CHARDEV = "serial0"
GUEST_CHARDEV = "guest0"
#: The name the guest finds its channel by (/sys/class/virtio-ports/*/name).
GUEST_PORT_NAME = "org.gridvm.guest.0"


def qemu_opt_value(value: str | Path) -> str:
    """Escape a value for a QEMU ``key=value,...`` option string (``,`` → ``,,``)."""
    return str(value).replace(",", ",,")


def build_argv(spec: MachineSpec, qemu_binary: str = DEFAULT_QEMU_BINARY) -> list[str]:
    """Return the full QEMU argv (binary first) that runs ``spec``."""
    name = spec.qemu_name
    argv = [
        qemu_binary,
        "-name",
        f"{name},process={name}",
        "-machine",
        f"{spec.machine},accel={spec.accelerator},graphics=off",
        "-cpu",
        "host" if spec.accelerator == "kvm" else "max",
        "-smp",
        str(spec.vcpus),
        "-m",
        str(spec.memory_mb),
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-vga",
        "none",
        "-no-reboot",
        "-no-shutdown",
        "-sandbox",
        SANDBOX,
        "-daemonize",
        "-pidfile",
        str(spec.pidfile),
        "-qmp",
        f"unix:{qemu_opt_value(spec.qmp_socket)},server=on,wait=off",
        *_serial_args(spec),
        *_guest_channel_args(spec),
        *_disk_args(spec),
        *_kernel_args(spec),
        *_network_args(spec),
        "-object",
        "rng-random,id=rng0,filename=/dev/urandom",
        "-device",
        "virtio-rng-pci,rng=rng0",
    ]
    return argv


def _serial_args(spec: MachineSpec) -> list[str]:
    chardev = ",".join(
        [
            "socket",
            f"id={SERIAL_CHARDEV}",
            f"path={qemu_opt_value(spec.serial_socket)}",
            "server=on",
            "wait=off",
            f"logfile={qemu_opt_value(spec.console_log)}",
            "logappend=on",
        ]
    )
    return ["-chardev", chardev, "-serial", f"chardev:{SERIAL_CHARDEV}"]


def _guest_channel_args(spec: MachineSpec) -> list[str]:
    if not spec.guest_channel:
        return []
    chardev = ",".join(
        [
            "socket",
            f"id={GUEST_CHARDEV}",
            f"path={qemu_opt_value(spec.guest_socket)}",
            "server=on",
            "wait=off",
        ]
    )
    return [
        "-device",
        "virtio-serial-pci,id=vser0",
        "-chardev",
        chardev,
        "-device",
        f"virtserialport,bus=vser0.0,chardev={GUEST_CHARDEV},name={GUEST_PORT_NAME}",
    ]


def _blockdev(
    node: str, path: Path, fmt: str, *, read_only: bool, cache: CacheMode | None = None
) -> list[str]:
    options = [
        f"driver={fmt}",
        f"node-name={node}",
        f"read-only={'on' if read_only else 'off'}",
        *_cache_options(cache),
        "file.driver=file",
        f"file.filename={qemu_opt_value(path)}",
    ]
    return ["-blockdev", ",".join(options)]


def _cache_options(cache: CacheMode | None) -> list[str]:
    """-drive cache=MODE as -blockdev options: O_DIRECT or not; guest flushes always honoured
    (no-flush=off). The guest-visible write cache goes on the device (write-cache)."""
    if cache is None:
        return []
    return [f"cache.direct={'on' if cache == 'none' else 'off'}", "cache.no-flush=off"]


def _virtio_blk(
    node: str, *, serial: str, bootindex: int | None = None, cache: CacheMode | None = None
) -> list[str]:
    # write-cache=on: with -blockdev the default would be write-through.
    options = [
        "virtio-blk-pci",
        f"drive={node}",
        f"id={node}-dev",
        f"serial={serial}",
        f"write-cache={'off' if cache == 'writethrough' else 'on'}",
    ]
    if bootindex is not None:
        options.append(f"bootindex={bootindex}")
    return ["-device", ",".join(options)]


def _disk_args(spec: MachineSpec) -> list[str]:
    args = [
        *_blockdev(ROOT_DISK_NODE, spec.disk, "qcow2", read_only=False),
        *_virtio_blk(ROOT_DISK_NODE, serial="gridvm-root", bootindex=1),
    ]
    if spec.seed_iso is not None:
        args += _blockdev(SEED_NODE, spec.seed_iso, "raw", read_only=True)
        args += _virtio_blk(SEED_NODE, serial="gridvm-seed")
    for index, extra in enumerate(spec.extra_disks, start=1):
        node = f"disk{index}"
        args += _blockdev(
            node, extra.path, extra.format, read_only=extra.read_only, cache=extra.cache
        )
        args += _virtio_blk(node, serial=extra.serial or f"gridvm-disk{index}", cache=extra.cache)
    return args


def _kernel_args(spec: MachineSpec) -> list[str]:
    # -kernel/-initrd/-append values are taken verbatim (not option strings).
    args: list[str] = []
    if spec.kernel is not None:
        args += ["-kernel", str(spec.kernel)]
    if spec.initrd is not None:
        args += ["-initrd", str(spec.initrd)]
    if spec.kernel_cmdline is not None:
        args += ["-append", spec.kernel_cmdline]
    return args


def _network_args(spec: MachineSpec) -> list[str]:
    if spec.network == "none":
        return ["-nic", "none"]
    device = ["virtio-net-pci", f"netdev={NIC_NETDEV}", "romfile="]
    if spec.mac is not None:
        device.append(f"mac={spec.mac}")
    if spec.network == "tap":
        # The agent made the tap and put it on its zone bridge: QEMU runs no scripts.
        netdev = f"tap,id={NIC_NETDEV},ifname={spec.tap},script=no,downscript=no"
    else:
        netdev = f"user,id={NIC_NETDEV}"
    return ["-netdev", netdev, "-device", ",".join(device)]
