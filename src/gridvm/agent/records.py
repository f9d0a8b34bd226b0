"""What the agent remembers of each VM on its host, kept on disk so a restart loses nothing.

One directory per VM under ``<data-dir>/vms/<vm-id>/`` holds the overlay disk,
the seed ISO, QEMU's sockets, pid file and console log, and ``record.json``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from gridvm.common.names import NAME_RE
from gridvm.schemas.agent import Assignment, EndCause, LocalState

RECORD = "record.json"
log = logging.getLogger(__name__)


@dataclass
class VmRecord:
    vm_id: str
    attempt: int
    assignment: Assignment
    state: LocalState
    cause: EndCause | None = None
    detail: str | None = None
    boot: int = 1
    # Monotonic-free wall clock (seconds since the epoch) of the first ACPI power-off request.
    stop_requested_at: float | None = None
    # The cached images this VM pinned (exactly those are unpinned when it goes).
    pins: list[str] = field(default_factory=list)
    # The server's console offset that byte 0 of the local console.log stands for
    # (the local file is emptied once it is shipped and large).
    console_base: int = 0
    # The job's exit status, read from the results disk when the guest powered off.
    exit_status: int | None = None
    # The last ``vm save`` request carried out, and its error if it failed.
    saved_id: str | None = None
    save_error: str | None = None
    # Site networking: the VM's address on its zone bridge (kept so a restart of the agent or
    # of the VM keeps it; in use only while the VM holds a tap, see agent.network).
    ipv4: str | None = None

    def to_json(self) -> str:
        data = asdict(self)
        data["assignment"] = self.assignment.model_dump(mode="json")
        data["state"] = self.state.value
        data["cause"] = self.cause.value if self.cause else None
        return json.dumps(data, indent=1)

    @classmethod
    def from_json(cls, text: str) -> VmRecord:
        data = json.loads(text)
        assignment = Assignment.model_validate(data["assignment"])
        pins = data.get("pins")
        if pins is None:  # written before pins were recorded: what it pinned then
            a = assignment
            pins = [d for d in (a.image_digest, a.kernel_digest, a.initrd_digest) if d]
        return cls(
            vm_id=data["vm_id"],
            attempt=int(data["attempt"]),
            assignment=assignment,
            state=LocalState(data["state"]),
            cause=EndCause(data["cause"]) if data.get("cause") else None,
            detail=data.get("detail"),
            stop_requested_at=data.get("stop_requested_at"),
            boot=int(data.get("boot", 1)),
            pins=[str(d) for d in pins],
            console_base=int(data.get("console_base", 0)),
            exit_status=data.get("exit_status"),
            saved_id=data.get("saved_id"),
            save_error=data.get("save_error"),
            ipv4=data.get("ipv4"),
        )


class RecordStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        # VM directories hold seed ISOs and records with the VM's token: owner only.
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        root.chmod(0o700)
        # VM ids whose record the last load_all could not read: leave them alone (acting
        # as if they had no record would start them afresh over a kept disk).
        self.broken: frozenset[str] = frozenset()

    def dir_of(self, vm_id: str) -> Path:
        if not NAME_RE.fullmatch(vm_id):
            raise ValueError(f"unsafe VM id {vm_id!r}")
        return self.root / vm_id

    def save(self, record: VmRecord) -> None:
        directory = self.dir_of(record.vm_id)
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = directory / (RECORD + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(record.to_json())
            f.flush()
            os.fsync(f.fileno())  # a power cut must not leave an empty record
        tmp.replace(directory / RECORD)

    def load_all(self) -> dict[str, VmRecord]:
        records: dict[str, VmRecord] = {}
        broken: set[str] = set()
        for path in sorted(self.root.glob(f"*/{RECORD}")):
            try:
                text = path.read_text()
            except FileNotFoundError:
                continue  # removed meanwhile (a fresh start, a forget)
            try:
                record = VmRecord.from_json(text)
            except (ValueError, KeyError, TypeError) as exc:
                log.error("cannot read %s, its VM is left alone: %s", path, exc)
                broken.add(path.parent.name)
                continue
            records[record.vm_id] = record
        self.broken = frozenset(broken)
        return records

    def remove(self, vm_id: str) -> None:
        shutil.rmtree(self.dir_of(vm_id), ignore_errors=True)
