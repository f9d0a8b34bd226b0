"""The hypervisor driver interface the agent programs against.

One implementation exists (:class:`gridvm.hypervisor.qemu.QemuDriver`); the
interface keeps the agent independent of how a VM is run, in the manner of
Ganeti's hypervisor drivers.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Literal

from gridvm.hypervisor.spec import MachineSpec

VmState = Literal["starting", "running", "paused", "shutdown", "error", "gone"]
"""What a VM's process is doing, as the driver sees it.

- ``starting``: the process exists but is not running the guest yet (no QMP
  monitor yet, or QEMU is loading an incoming migration/suspend stream).
- ``running`` / ``paused``: the guest runs / is stopped (pause, S3 suspend).
- ``shutdown``: the guest powered off (or rebooted: ``-no-reboot``); QEMU
  stays alive thanks to ``-no-shutdown``, until :meth:`HypervisorDriver.kill`.
- ``error``: QEMU stopped the guest on a failure (emulation error, guest
  panic reported by a pvpanic device, disk I/O error such as a full host disk).
- ``gone``: no such process (never started, killed, crashed; zombies included).
"""


class HypervisorDriver(ABC):
    """Start, observe and stop VMs on this host."""

    @abstractmethod
    def start(self, spec: MachineSpec) -> int:
        """Start the VM and return its process id once it runs (or raise)."""

    @abstractmethod
    def state(self, spec: MachineSpec) -> VmState:
        """The VM's current state.

        Raises :class:`~gridvm.common.errors.HypervisorError` only when the
        process is alive but its monitor does not answer in time.
        """

    @abstractmethod
    def powerdown(self, spec: MachineSpec) -> None:
        """Ask the guest to power off (ACPI power button); returns at once."""

    @abstractmethod
    def pause(self, spec: MachineSpec) -> None:
        """Stop the guest's CPUs."""

    @abstractmethod
    def resume(self, spec: MachineSpec) -> None:
        """Let a paused guest run again."""

    @abstractmethod
    def kill(self, spec: MachineSpec, timeout: float = 5.0) -> None:
        """End the VM's process for sure and remove its sockets and pid file."""

    @abstractmethod
    def find_running(self) -> dict[str, int]:
        """Map vm_id to pid for every VM process on this host (re-adoption)."""
