"""Ship a VM's serial console log to the server, and keep the local file small.

QEMU appends the guest's serial output to ``console.log`` in the VM's directory
(opened with O_APPEND: after a truncation it goes on writing at the new end).
The server says how much of the output it has taken (its offset); the record's
``console_base`` is the server offset that byte 0 of the local file stands for.
Once the server has all of a large local file, the file is emptied.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

from gridvm.agent.records import VmRecord

log = logging.getLogger(__name__)

CHUNK = 1024 * 1024
KEEP_BYTES = 8 * 1024 * 1024

Send = Callable[[int, bytes], int]  # (server offset, data) -> the server's new offset
Save = Callable[[VmRecord], None]


def ship_console(
    log_path: Path,
    record: VmRecord,
    offset: int,
    send: Send,
    save: Save | None,
    keep_bytes: int = KEEP_BYTES,
) -> int:
    """Send the server the next chunk it lacks; return the server's new offset.

    ``save`` persists a changed ``console_base``; without it (a VM whose record
    another thread is writing) the local file is only read, never emptied.
    """
    if not log_path.exists():
        return offset
    size = log_path.stat().st_size
    local = offset - record.console_base
    if not 0 <= local <= size:
        if save is None:
            return offset
        # The server's count does not fall in the local file (the server lost its log,
        # or the agent died between emptying the file and saving the base): the file
        # holds what the server has not had.
        log.info("console of %s: the server is at %d, sending the local log", record.vm_id, offset)
        record.console_base = offset
        save(record)
        local = 0
    if local < size:
        with log_path.open("rb") as f:
            f.seek(local)
            data = f.read(CHUNK)
        offset = send(offset, data)
        local = offset - record.console_base
    # Empty the file once the server has all of it (checked as late as possible: what
    # QEMU writes between the check and the truncation would be lost).
    if save is not None and local > keep_bytes and log_path.stat().st_size == local:
        os.truncate(log_path, 0)
        record.console_base = offset
        save(record)
    return offset
