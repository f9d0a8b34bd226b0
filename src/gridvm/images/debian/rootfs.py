"""Running mmdebstrap and turning its tar into a qcow2 root disk.

mmdebstrap writes a tar (owners and modes as in the build's namespace); it is
unpacked by GNU tar with numeric owners (the host must be root for that),
then ``mkfs.ext4 -d`` fills a file system from the directory without mounting
anything, and ``qemu-img`` makes a compressed qcow2 of it.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from gridvm.common.errors import ToolFailed
from gridvm.images.starter.disk import FILESYSTEM_LABEL, to_qcow2
from gridvm.images.starter.tools import require, run

LogLine = Callable[[str], None]

_UNKNOWN_PACKAGE = re.compile(r"E: Unable to locate package (\S+)")
_NO_VERSION = re.compile(r"E: Version '([^']+)' for '([^']+)' was not found")
_HOOK_FAILED = re.compile(r"E: command failed: (.*)")

# mmdebstrap's progress lines and where the build is when it prints them.
STEPS: tuple[tuple[str, str, float], ...] = (
    ("I: automatically chosen", "starting", 0.02),
    ("I: running apt-get update", "reading the package lists", 0.05),
    ("I: downloading packages with apt", "downloading packages", 0.10),
    ("I: extracting archives", "unpacking the essential packages", 0.25),
    ("I: installing essential packages", "installing the essential packages", 0.30),
    ("I: installing remaining packages", "installing packages", 0.45),
    ("I: running --customize-hook", "customizing the root", 0.65),
    ("I: creating tarball", "writing the root file system", 0.75),
)


def bootstrap_failure(log_tail: Sequence[str]) -> str:
    """The clearest reason in mmdebstrap's output for a failed build."""
    for line in log_tail:
        if match := _UNKNOWN_PACKAGE.search(line):
            return f"unknown package '{match[1]}'"
        if match := _NO_VERSION.search(line):
            return f"package '{match[2]}' has no version '{match[1]}'"
    errors = [line.strip() for line in log_tail if line.startswith("E: ")]
    return errors[0] if errors else "mmdebstrap failed"


def run_logged(
    argv: Sequence[str],
    log: LogLine,
    *,
    timeout: float,
    env: dict[str, str] | None = None,
    failure: Callable[[list[str]], str] | None = None,
    cancel: threading.Event | None = None,
) -> None:
    """Run ``argv`` with its output (stdout and stderr) passed to ``log`` line by line.

    Setting ``cancel`` (e.g. the server is stopping) kills the program and all it
    started at its next output line."""
    args = [str(arg) for arg in argv]
    args[0] = require(args[0])
    deadline = time.monotonic() + timeout
    lines: list[str] = []
    process = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        errors="replace",
        env={**os.environ, **(env or {})},
        start_new_session=True,
    )
    assert process.stdout is not None
    try:
        for line in process.stdout:
            line = line.rstrip("\n")
            lines.append(line)
            log(line)
            if time.monotonic() > deadline:
                raise ToolFailed(f"{Path(args[0]).name} did not finish within {timeout:.0f} s")
            if cancel is not None and cancel.is_set():
                raise ToolFailed("the build was cancelled: the server is stopping")
        status = process.wait(timeout=max(1.0, deadline - time.monotonic()))
    except BaseException:
        _kill_group(process)
        raise
    if status != 0:
        reason = failure(lines) if failure else f"exit status {status}"
        raise ToolFailed(reason)


def _kill_group(process: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, 9)
    process.wait()


def unpack_tar(tar: Path, dest: Path) -> None:
    """Unpack the build's tar as it is (owners, modes), without device nodes."""
    if os.geteuid() != 0:
        raise ToolFailed(
            "unpacking a Debian root with its owners needs root",
            hint="build Debian images as root (e.g. sudo make images)",
        )
    dest.mkdir(parents=True, exist_ok=True)
    run(
        [
            "tar", "-x", "-f", tar, "-C", dest,
            "--numeric-owner", "--same-permissions", "--same-owner",
            "--exclude=./dev/*",
        ],
        timeout=600,
    )  # fmt: skip


def tree_size(root: Path) -> int:
    """Bytes of the regular files under ``root`` (hard links counted once)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for directory, _subdirs, files in os.walk(root):
        for name in files:
            info = os.lstat(Path(directory) / name)
            key = (info.st_dev, info.st_ino)
            if key in seen:
                continue
            seen.add(key)
            total += info.st_blocks * 512
    return total


def disk_size_mib(content_bytes: int, minimum_mib: int) -> int:
    """A root file system with room to spare: content x 1.5 + 512 MiB, at least ``minimum``."""
    wanted = (content_bytes * 3 // 2) // (1024 * 1024) + 512
    return max(minimum_mib, wanted)


def tree_to_qcow2(tree: Path, work: Path, qcow2: Path, size_mib: int, fs_uuid: str) -> None:
    """``tree`` as an ext4 file system in the compressed qcow2 ``qcow2``."""
    raw = work / "disk.raw"
    run(
        [
            "mkfs.ext4", "-q", "-F",
            "-L", FILESYSTEM_LABEL,
            "-U", fs_uuid,
            "-E", "root_owner=0:0,nodiscard",
            "-m", "0",
            "-d", tree,
            raw, f"{size_mib}M",
        ],
        timeout=900,
    )  # fmt: skip
    try:
        to_qcow2(raw, qcow2)
    finally:
        raw.unlink(missing_ok=True)


def check_tools() -> None:
    """The host programs a Debian build needs, or ToolFailed saying what to install."""
    for program, package in (("mmdebstrap", "mmdebstrap"), ("tar", "tar")):
        if shutil.which(program) is None:
            raise ToolFailed(f"{program} not found", hint=f"apt-get install {package}")
