"""Exporting a qcow2 read-only onto a regular file with qemu-storage-daemon (FUSE)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from gridvm.images.inspection.tools import GiB, ToolError, binary

READY_TIMEOUT_S = 15.0


def _mounted(path: Path, parent_dev: int) -> bool:
    try:
        return path.stat().st_dev != parent_dev
    except OSError:
        return False


def _unmount(path: Path) -> None:
    fusermount = shutil.which("fusermount3") or shutil.which("fusermount")
    if fusermount is not None:
        subprocess.run(
            [fusermount, "-u", "-z", str(path)],
            capture_output=True,
            timeout=10,
            check=False,
        )


@contextlib.contextmanager
def exported(qcow2: Path, *, timeout_s: float = READY_TIMEOUT_S) -> Iterator[Path]:
    """The guest disk of ``qcow2`` (its backing chain included) as a read-only regular file.

    The daemon is killed and the temporary mount point removed on leaving, whatever happened.
    """
    daemon = binary("qemu-storage-daemon", "qemu-utils")
    workdir = Path(tempfile.mkdtemp(prefix="gridvm-inspect-"))
    mountpoint = workdir / "disk"
    mountpoint.touch(mode=0o600)
    parent_dev = workdir.stat().st_dev
    blockdev = {
        "driver": "qcow2",
        "node-name": "disk",
        "read-only": True,
        "file": {"driver": "file", "filename": str(qcow2.resolve()), "read-only": True},
    }
    argv = [
        binary("prlimit", "util-linux"),
        f"--as={2 * GiB}",
        "--",
        daemon,
        "--blockdev",
        json.dumps(blockdev),
        "--export",
        f"type=fuse,id=export,node-name=disk,mountpoint={mountpoint},writable=off",
    ]
    process: subprocess.Popen[bytes] | None = None
    try:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout_s
        while not _mounted(mountpoint, parent_dev):
            if process.poll() is not None:
                err = process.stderr.read().decode(errors="replace") if process.stderr else ""
                raise ToolError(f"qemu-storage-daemon could not export the disk: {err.strip()}")
            if time.monotonic() > deadline:
                raise ToolError(f"qemu-storage-daemon did not export the disk in {timeout_s:g} s")
            time.sleep(0.01)
        yield mountpoint
    finally:
        if process is not None:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=5)
            if process.stderr is not None:
                process.stderr.close()
        if _mounted(mountpoint, parent_dev):
            _unmount(mountpoint)
        shutil.rmtree(workdir, ignore_errors=True)
