"""A reproducible initramfs writer (cpio "newc", gzip).

Written here rather than by calling ``cpio`` so that the archive is the same
bytes on every build: entries sorted, owner root, one fixed timestamp, and a
``/dev/console`` device node added without needing root to ``mknod`` it (the
kernel opens it for /init before anything can mount devtmpfs).
"""

from __future__ import annotations

import gzip
import io
import os
import stat
from dataclasses import dataclass
from pathlib import Path

_MAGIC = b"070701"
_TRAILER = "TRAILER!!!"


@dataclass(frozen=True)
class DeviceNode:
    """A character device to add to the archive (path without leading slash)."""

    path: str
    major: int
    minor: int
    mode: int = 0o600


def _pad4(length: int) -> bytes:
    return b"\0" * (-length % 4)


def _entry(
    name: str, mode: int, data: bytes, inode: int, mtime: int, rdev: tuple[int, int] = (0, 0)
) -> bytes:
    """One newc header, its name and its data, each padded to 4 bytes."""
    encoded_name = name.encode() + b"\0"
    nlink = 2 if stat.S_ISDIR(mode) else 1
    fields = (inode, mode, 0, 0, nlink, mtime, len(data), 0, 0, rdev[0], rdev[1])
    header = _MAGIC + b"".join(b"%08X" % value for value in fields)
    header += b"%08X" % len(encoded_name) + b"%08X" % 0
    head = header + encoded_name
    return head + _pad4(len(head)) + data + _pad4(len(data))


def _tree_entries(root: Path) -> list[tuple[str, Path]]:
    """Archive names and paths of everything under ``root``, parents before children."""
    entries = []
    for directory, subdirs, files in os.walk(root):
        subdirs.sort()
        for name in sorted([*subdirs, *files]):
            path = Path(directory) / name
            entries.append((path.relative_to(root).as_posix(), path))
    return sorted(entries)


def newc_archive(root: Path, devices: list[DeviceNode], mtime: int) -> bytes:
    """The uncompressed archive of the tree at ``root`` plus ``devices``."""
    out = io.BytesIO()
    inode = 1
    for name, path in _tree_entries(root):
        info = path.lstat()
        mode = stat.S_IFMT(info.st_mode) | stat.S_IMODE(info.st_mode)
        if stat.S_ISLNK(info.st_mode):
            data = str(path.readlink()).encode()
        elif stat.S_ISREG(info.st_mode):
            data = path.read_bytes()
        elif stat.S_ISDIR(info.st_mode):
            data = b""
        else:
            raise ValueError(f"unsupported file type in initramfs tree: {path}")
        out.write(_entry(name, mode, data, inode, mtime))
        inode += 1
    for device in devices:
        mode = stat.S_IFCHR | device.mode
        out.write(_entry(device.path, mode, b"", inode, mtime, (device.major, device.minor)))
        inode += 1
    out.write(_entry(_TRAILER, 0, b"", 0, 0))
    return out.getvalue()


def write_initramfs(root: Path, devices: list[DeviceNode], out: Path, mtime: int) -> None:
    """Write the gzip-compressed newc archive of ``root`` to ``out``."""
    archive = newc_archive(root, devices, mtime)
    with (
        out.open("wb") as raw,
        gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=mtime) as packed,
    ):
        packed.write(archive)
