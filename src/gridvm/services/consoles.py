"""Serial console logs as the server keeps them: one file per VM, appended by its agent."""

from __future__ import annotations

import threading
from pathlib import Path

from gridvm.common.errors import InvalidInput
from gridvm.common.names import validate_name
from gridvm.common.units import format_size

MAX_CONSOLE_BYTES = 16 * 1024**2


class ConsoleStore:
    def __init__(self, root: Path, limit: int = MAX_CONSOLE_BYTES) -> None:
        self.root = root
        self.limit = limit
        self._lock = threading.Lock()

    def _path(self, vm_id: str) -> Path:
        return self.root / f"{validate_name(vm_id, what='VM id')}.log"

    def offset(self, vm_id: str) -> int:
        """How much of the VM's console output the server has taken: where the agent goes on.

        Equal to the log's size, until the log is full: then the log stops growing and
        the number of bytes taken is kept beside it.
        """
        taken = self._path(vm_id).with_suffix(".taken")
        if taken.exists():
            return int(taken.read_text())
        path = self._path(vm_id)
        return path.stat().st_size if path.exists() else 0

    def read(self, vm_id: str, offset: int = 0) -> bytes:
        if offset < 0:
            raise InvalidInput("the console offset cannot be negative")
        path = self._path(vm_id)
        if not path.exists():
            return b""
        with path.open("rb") as f:
            f.seek(offset)
            return f.read()

    def append(self, vm_id: str, offset: int, data: bytes) -> int:
        """Take ``data`` if ``offset`` is where the server stands; return where it stands now.

        A chunk from another offset (a retry, an agent restart) is not written twice:
        the answer is the current offset. Beyond the size limit the rest is dropped, with
        one line saying so, but still counted as taken, so the agent moves on.
        """
        with self._lock:
            current = self.offset(vm_id)
            if offset != current:
                return current
            path = self._path(vm_id)
            taken = path.with_suffix(".taken")
            size = path.stat().st_size if path.exists() else 0
            room = max(0, self.limit - size)
            dropping = len(data) > room
            self.root.mkdir(parents=True, exist_ok=True)
            with path.open("ab") as f:
                f.write(data[:room])
                if dropping and not taken.exists():
                    note = f"\n[gridvm: console log truncated at {format_size(self.limit)}]\n"
                    f.write(note.encode())
            if dropping:
                taken.write_text(str(offset + len(data)))
            return offset + len(data)

    def start_over(self, vm_id: str) -> None:
        """A new attempt gets a new log; the last one is kept beside it."""
        path = self._path(vm_id)
        path.with_suffix(".taken").unlink(missing_ok=True)
        if path.exists():
            path.replace(path.with_suffix(".log.previous"))
