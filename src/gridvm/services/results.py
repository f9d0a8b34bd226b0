"""Job results as the server keeps them: one tar per VM, counted against its owner's quota."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from gridvm.common.errors import NotFound, PayloadTooLarge
from gridvm.common.names import validate_name
from gridvm.common.units import format_size


class ResultStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, vm_id: str) -> Path:
        return self.root / f"{validate_name(vm_id, what='VM id')}.tar"

    def save(self, vm_id: str, chunks: Iterable[bytes], *, max_bytes: int) -> int:
        """Store the VM's results tar (replacing any earlier one); returns its size.

        Written to a temporary file first: a cut or oversized upload leaves nothing.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self.root, prefix=".part-")
        tmp = Path(name)
        size = 0
        try:
            with os.fdopen(fd, "wb") as f:
                for chunk in chunks:
                    size += len(chunk)
                    if size > max_bytes:
                        raise PayloadTooLarge(
                            f"the results are larger than the {format_size(max_bytes)} allowed",
                            hint="write less to $GRIDVM_OUTPUT, or ask for more results quota",
                        )
                    f.write(chunk)
            tmp.replace(self.path(vm_id))
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return size

    def existing(self, vm_id: str) -> Path:
        path = self.path(vm_id)
        if not path.exists():
            raise NotFound(
                f"VM {vm_id} has no results",
                hint="results appear when a job that writes to $GRIDVM_OUTPUT ends",
            )
        return path

    def delete(self, vm_id: str) -> None:
        self.path(vm_id).unlink(missing_ok=True)
