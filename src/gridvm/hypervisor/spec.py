"""What one VM looks like to the hypervisor: a frozen, validated description.

A :class:`MachineSpec` holds everything the QEMU command line is built from
(see :mod:`gridvm.hypervisor.qemu_argv`) and where the VM's runtime files live.
It is checked once, here, so that the argv builder can stay a pure function
that never has to reject anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from gridvm.common.errors import InvalidInput

Accelerator = Literal["kvm", "tcg"]
NetworkMode = Literal["user", "tap", "none"]
DiskFormat = Literal["qcow2", "raw"]
# QEMU's -drive cache= modes, spelled out on -blockdev/-device (see qemu_argv._cache_options).
CacheMode = Literal["writeback", "writethrough", "none"]

ACCELERATORS: tuple[Accelerator, ...] = ("kvm", "tcg")
NETWORK_MODES: tuple[NetworkMode, ...] = ("user", "tap", "none")
DISK_FORMATS: tuple[DiskFormat, ...] = ("qcow2", "raw")
CACHE_MODES: tuple[CacheMode, ...] = ("writeback", "writethrough", "none")

# Linux limits sun_path to 108 bytes including the terminating NUL.
UNIX_SOCKET_PATH_MAX = 107

# The id ends up in `-name gridvm-<id>` (a QEMU option string, so no commas)
# and in file names; keep it to a boring, portable alphabet.
_VM_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_MACHINE = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
_MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")
# A Linux interface name (IFNAMSIZ 16 with the NUL), safe in a QEMU option string.
_IFNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,14}")

# Short names keep unix socket paths well under the sun_path limit.
QMP_SOCKET_NAME = "qmp.sock"
SERIAL_SOCKET_NAME = "serial.sock"
GUEST_SOCKET_NAME = "guest.sock"
CONSOLE_LOG_NAME = "console.log"
PIDFILE_NAME = "qemu.pid"


@dataclass(frozen=True, kw_only=True)
class ExtraDisk:
    """A further virtio-blk disk: the results disk, a user's volume."""

    path: Path
    format: DiskFormat = "qcow2"
    read_only: bool = False
    # What the guest sees in /sys/block/vdX/serial (default gridvm-disk<N>).
    serial: str | None = None
    # Spelled out on the command line when set (a volume's data must reach its file once
    # the guest flushes); None keeps QEMU's -blockdev defaults.
    cache: CacheMode | None = None

    def __post_init__(self) -> None:
        _check_path("extra disk", self.path)
        if self.format not in DISK_FORMATS:
            raise InvalidInput(
                f"extra disk format must be one of {', '.join(DISK_FORMATS)}, not {self.format!r}"
            )
        if self.cache is not None and self.cache not in CACHE_MODES:
            raise InvalidInput(
                f"extra disk cache mode must be one of {', '.join(CACHE_MODES)}, not {self.cache!r}"
            )
        if self.serial is not None and not re.fullmatch(r"[A-Za-z0-9-]{1,20}", self.serial):
            raise InvalidInput(f"invalid disk serial {self.serial!r}", hint="1-20 of A-Z a-z 0-9 -")


@dataclass(frozen=True, kw_only=True)
class MachineSpec:
    """One VM as QEMU will run it.

    All paths must be absolute: QEMU started with ``-daemonize`` changes its
    working directory to ``/``, so a relative path would silently mean
    something else (or nothing) once the VM runs.
    """

    vm_id: str
    vcpus: int
    memory_mb: int
    disk: Path
    """The VM's qcow2 overlay (its backing file is the cached base image)."""
    accelerator: Accelerator
    run_dir: Path
    """Per-VM directory holding the sockets, the pid file and the console log."""
    seed_iso: Path | None = None
    kernel: Path | None = None
    initrd: Path | None = None
    kernel_cmdline: str | None = None
    network: NetworkMode = "user"
    mac: str | None = None
    tap: str | None = None
    """With ``network="tap"``: the host tap device (made and bridged by the agent beforehand;
    QEMU only opens it, with no ifup/ifdown scripts)."""
    machine: str = "q35"
    extra_disks: tuple[ExtraDisk, ...] = ()
    guest_channel: bool = False
    """A virtio-serial port (``org.gridvm.guest.0``) on ``guest.sock``: the guest's line to
    the server, relayed by the agent, which works without any network."""

    def __post_init__(self) -> None:
        if not isinstance(self.vm_id, str) or not _VM_ID.fullmatch(self.vm_id):
            raise InvalidInput(
                f"invalid VM id {self.vm_id!r}",
                hint="use 1-64 characters from A-Z a-z 0-9 _ . -, starting with a letter or digit",
            )
        if isinstance(self.vcpus, bool) or not isinstance(self.vcpus, int) or self.vcpus < 1:
            raise InvalidInput(f"vcpus must be a positive integer, not {self.vcpus!r}")
        if (
            isinstance(self.memory_mb, bool)
            or not isinstance(self.memory_mb, int)
            or self.memory_mb < 1
        ):
            raise InvalidInput(f"memory_mb must be a positive integer, not {self.memory_mb!r}")
        if self.accelerator not in ACCELERATORS:
            raise InvalidInput(
                f"accelerator must be one of {', '.join(ACCELERATORS)}, not {self.accelerator!r}"
            )
        if self.network not in NETWORK_MODES:
            raise InvalidInput(
                f"network must be one of {', '.join(NETWORK_MODES)}, not {self.network!r}"
            )
        if not _MACHINE.fullmatch(self.machine):
            raise InvalidInput(f"invalid QEMU machine type {self.machine!r}")
        _check_path("disk", self.disk)
        _check_path("run_dir", self.run_dir)
        for name, path in (
            ("seed_iso", self.seed_iso),
            ("kernel", self.kernel),
            ("initrd", self.initrd),
        ):
            if path is not None:
                _check_path(name, path)
        if self.kernel is None and self.initrd is not None:
            raise InvalidInput("an initrd needs a kernel (direct kernel boot)")
        if self.kernel is None and self.kernel_cmdline is not None:
            raise InvalidInput("a kernel command line needs a kernel (direct kernel boot)")
        if self.kernel_cmdline is not None and "\0" in self.kernel_cmdline:
            raise InvalidInput("the kernel command line must not contain NUL bytes")
        if self.mac is not None:
            self._check_mac(self.mac)
        if self.network == "tap":
            if not isinstance(self.tap, str) or not _IFNAME.fullmatch(self.tap):
                raise InvalidInput(
                    f"invalid tap device name {self.tap!r}",
                    hint="1-15 characters from A-Z a-z 0-9 _ . -, starting with a letter or digit",
                )
        elif self.tap is not None:
            raise InvalidInput(f'a tap device needs network="tap", not {self.network!r}')
        for extra in self.extra_disks:
            if not isinstance(extra, ExtraDisk):
                raise InvalidInput(f"extra_disks must hold ExtraDisk values, not {extra!r}")
        sockets = (self.qmp_socket, self.serial_socket, self.guest_socket)
        longest = max(len(bytes(p)) for p in sockets)
        if longest > UNIX_SOCKET_PATH_MAX:
            raise InvalidInput(
                f"run_dir {self.run_dir} is too long for a unix socket path "
                f"({longest} bytes, at most {UNIX_SOCKET_PATH_MAX})",
                hint="use a shorter run directory",
            )

    def _check_mac(self, mac: str) -> None:
        if self.network == "none":
            raise InvalidInput("a MAC address makes no sense without a network")
        if not isinstance(mac, str) or not _MAC.fullmatch(mac):
            raise InvalidInput(
                f"invalid MAC address {mac!r}",
                hint="write it as six lower-case hex pairs: 52:54:00:12:34:56",
            )
        if int(mac[:2], 16) & 1:
            raise InvalidInput(f"MAC address {mac} is a multicast address")

    @property
    def qemu_name(self) -> str:
        """The ``-name`` QEMU runs under; how the driver recognises its processes."""
        return f"gridvm-{self.vm_id}"

    @property
    def qmp_socket(self) -> Path:
        return self.run_dir / QMP_SOCKET_NAME

    @property
    def serial_socket(self) -> Path:
        return self.run_dir / SERIAL_SOCKET_NAME

    @property
    def guest_socket(self) -> Path:
        return self.run_dir / GUEST_SOCKET_NAME

    @property
    def console_log(self) -> Path:
        return self.run_dir / CONSOLE_LOG_NAME

    @property
    def pidfile(self) -> Path:
        return self.run_dir / PIDFILE_NAME


def _check_path(name: str, path: object) -> None:
    if not isinstance(path, Path):
        raise InvalidInput(f"{name} must be a pathlib.Path, not {type(path).__name__}")
    if not path.is_absolute():
        raise InvalidInput(
            f"{name} {path} must be an absolute path",
            hint="QEMU runs daemonized from /, where relative paths mean something else",
        )
    if "\0" in str(path):
        raise InvalidInput(f"{name} path must not contain NUL bytes")
