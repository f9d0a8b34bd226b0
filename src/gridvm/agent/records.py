"""What the agent remembers of each VM on its host, kept on disk so a restart loses nothing.

One directory per VM under ``<data-dir>/vms/<vm-id>/`` holds the overlay disk,
the seed ISO, QEMU's sockets, pid file and console log, and ``record.json``.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from gridvm.common.names import NAME_RE
from gridvm.schemas.agent import Assignment, EndCause, LocalState

RECORD = "record.json"


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

    def to_json(self) -> str:
        data = asdict(self)
        data["assignment"] = self.assignment.model_dump(mode="json")
        data["state"] = self.state.value
        data["cause"] = self.cause.value if self.cause else None
        return json.dumps(data, indent=1)

    @classmethod
    def from_json(cls, text: str) -> VmRecord:
        data = json.loads(text)
        return cls(
            vm_id=data["vm_id"],
            attempt=int(data["attempt"]),
            assignment=Assignment.model_validate(data["assignment"]),
            state=LocalState(data["state"]),
            cause=EndCause(data["cause"]) if data.get("cause") else None,
            detail=data.get("detail"),
            stop_requested_at=data.get("stop_requested_at"),
            boot=int(data.get("boot", 1)),
        )


class RecordStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def dir_of(self, vm_id: str) -> Path:
        if not NAME_RE.match(vm_id):
            raise ValueError(f"unsafe VM id {vm_id!r}")
        return self.root / vm_id

    def save(self, record: VmRecord) -> None:
        directory = self.dir_of(record.vm_id)
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / (RECORD + ".tmp")
        tmp.write_text(record.to_json())
        tmp.replace(directory / RECORD)

    def load_all(self) -> dict[str, VmRecord]:
        records: dict[str, VmRecord] = {}
        for path in sorted(self.root.glob(f"*/{RECORD}")):
            record = VmRecord.from_json(path.read_text())
            records[record.vm_id] = record
        return records

    def remove(self, vm_id: str) -> None:
        shutil.rmtree(self.dir_of(vm_id), ignore_errors=True)
