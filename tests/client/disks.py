"""Small real disk images for tests, made with qemu-img."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

MIB = 1024**2


def make_qcow2(path: Path, size: str = "64M", *, backing: Path | None = None) -> Path:
    """A qcow2 image (optionally on a backing file) at ``path``."""
    argv = ["qemu-img", "create", "-q", "-f", "qcow2"]
    if backing is not None:
        argv += ["-b", str(backing), "-F", "qcow2"]
    subprocess.run([*argv, str(path), size], check=True, capture_output=True)
    return path


def disk_with_data(path: Path, megabytes: int = 3) -> Path:
    """A 64 MiB qcow2 at ``path`` whose first ``megabytes`` MiB hold data (so its file is
    about that large: big enough to go in several chunks)."""
    make_qcow2(path, "64M")
    subprocess.run(
        ["qemu-io", "-f", "qcow2", "-c", f"write -P 7 0 {megabytes}M", str(path)],
        check=True,
        capture_output=True,
    )
    return path


def image_info(path: Path) -> dict[str, object]:
    """What qemu-img sees in ``path`` (format, virtual-size, backing file...)."""
    out = subprocess.run(
        ["qemu-img", "info", "--output=json", str(path)], check=True, capture_output=True
    )
    info: dict[str, object] = json.loads(out.stdout)
    return info
