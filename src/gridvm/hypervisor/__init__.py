"""Running VMs with QEMU: the driver interface and the QEMU driver.

- :mod:`.spec`: :class:`MachineSpec`, one VM as QEMU will run it (validated).
- :mod:`.qemu_argv`: :func:`build_argv`, the command line as data (pure).
- :mod:`.qemu_driver`: :class:`QemuDriver`, start/observe/stop daemonized QEMUs.
- :mod:`.qmp`: :class:`QmpClient`, QMP with timeouts and clear errors.
- :mod:`.accel`: :func:`detect_accelerator`, KVM only where it really works.
"""

from gridvm.hypervisor.accel import detect_accelerator
from gridvm.hypervisor.driver import HypervisorDriver, VmState
from gridvm.hypervisor.qemu_argv import build_argv
from gridvm.hypervisor.qemu_driver import QemuDriver
from gridvm.hypervisor.qmp import QmpClient
from gridvm.hypervisor.spec import ExtraDisk, MachineSpec

__all__ = [
    "ExtraDisk",
    "HypervisorDriver",
    "MachineSpec",
    "QemuDriver",
    "QmpClient",
    "VmState",
    "build_argv",
    "detect_accelerator",
]
