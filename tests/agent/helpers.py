"""Literal assignments and records, and a hypervisor driver that only keeps notes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gridvm.agent.machines import Machines
from gridvm.agent.records import RecordStore, VmRecord
from gridvm.common.errors import HypervisorError
from gridvm.hypervisor.driver import HypervisorDriver, VmState
from gridvm.hypervisor.spec import MachineSpec
from gridvm.images.cache import ImageCache
from gridvm.schemas.agent import Assignment, DesiredState, EndCause, LocalState
from gridvm.schemas.vms import VmMode

IMAGE = "sha256:" + "a" * 64


def assignment(
    vm_id: str = "vm-1",
    desired: DesiredState = DesiredState.running,
    attempt: int = 1,
    mode: VmMode = VmMode.multi,
    boot: int = 1,
    image_digest: str = IMAGE,
) -> Assignment:
    return Assignment(
        vm_id=vm_id,
        attempt=attempt,
        boot=boot,
        desired=desired,
        mode=mode,
        vcpus=1,
        memory_mb=256,
        disk_bytes=None,
        image_digest=image_digest,
        kernel_digest=None,
        initrd_digest=None,
        kernel_cmdline=None,
        hostname="h",
        user_data=None,
        stop_grace_s=30,
    )


def record(
    a: Assignment,
    state: LocalState,
    stop_at: float | None = None,
    cause: EndCause | None = None,
    detail: str | None = None,
) -> VmRecord:
    return VmRecord(
        a.vm_id,
        a.attempt,
        a,
        state,
        cause=cause,
        detail=detail,
        boot=a.boot,
        stop_requested_at=stop_at,
    )


class FakeDriver(HypervisorDriver):
    """Keeps each VM's state in a dict; ``fail`` makes a method raise for every VM."""

    def __init__(self) -> None:
        self.states: dict[str, VmState] = {}
        self.hung: set[str] = set()
        self.fail: dict[str, Exception] = {}
        self.calls: list[tuple[str, str]] = []

    def _call(self, what: str, spec: MachineSpec) -> None:
        self.calls.append((what, spec.vm_id))
        if what in self.fail:
            raise self.fail[what]

    def start(self, spec: MachineSpec) -> int:
        self._call("start", spec)
        self.states[spec.vm_id] = "running"
        return 1234

    def state(self, spec: MachineSpec) -> VmState:
        if spec.vm_id in self.hung:
            raise HypervisorError(f"QMP of {spec.vm_id} did not answer in 5 s")
        return self.states.get(spec.vm_id, "gone")

    def powerdown(self, spec: MachineSpec) -> None:
        self._call("powerdown", spec)

    def pause(self, spec: MachineSpec) -> None:
        self._call("pause", spec)
        self.states[spec.vm_id] = "paused"

    def resume(self, spec: MachineSpec) -> None:
        self._call("resume", spec)
        self.states[spec.vm_id] = "running"

    def kill(self, spec: MachineSpec, timeout: float = 5.0) -> None:
        self._call("kill", spec)
        self.states.pop(spec.vm_id, None)

    def find_running(self) -> dict[str, int]:
        return {vm_id: 1234 for vm_id in self.states}


@dataclass
class Images:
    """Two small qcow2 images, as two builds of one site template would be."""

    old: str
    new: str
    files: dict[str, Path]


@dataclass
class Host:
    machines: Machines
    driver: FakeDriver
    records: RecordStore
    cache: ImageCache
    fetched: list[str]
