"""Local files the SDK writes: whole or not at all."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

CHUNK_SIZE = 1024 * 1024

Progress = Callable[[int], None]
"""Called with the number of bytes transferred so far."""


@contextmanager
def replacing(dest: Path) -> Iterator[BinaryIO]:
    """A temporary file next to ``dest`` that becomes ``dest`` when the block ends well.

    The data is synced before the rename. If the block raises, the temporary
    file is removed and an existing ``dest`` is left as it was.
    """
    fd, temp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        temp.replace(dest)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
