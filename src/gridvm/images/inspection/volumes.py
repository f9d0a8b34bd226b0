"""Where the file systems of a guest disk are: the whole disk or the partitions of a table."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from gridvm.images.inspection.tools import ToolError, ToolLimits, binary, run_tool

SECTOR = 512
_PROBE_LIMITS = ToolLimits(timeout_s=20, max_output=1024**2)
# How many partitions we look at (a hostile table may list thousands).
MAX_PARTITIONS = 16


@dataclass(frozen=True)
class Volume:
    offset: int  # bytes from the start of the disk
    kind: str  # "ext", "xfs", "vfat", "luks", "lvm", "btrfs", "swap", "unknown"
    where: str  # "whole disk" or "partition 2"


def _read_at(disk: Path, offset: int, size: int) -> bytes:
    with disk.open("rb") as f:
        f.seek(offset)
        return f.read(size)


def file_system_kind(disk: Path, offset: int) -> str:
    """The kind of file system starting at ``offset``, from its magic numbers."""
    head = _read_at(disk, offset, 68 * 1024)
    if len(head) >= 1024 + 58 and head[1024 + 56 : 1024 + 58] == b"\x53\xef":
        return "ext"
    if head[:4] == b"XFSB":
        return "xfs"
    if head[:6] == b"LUKS\xba\xbe":
        return "luks"
    if head[512:520] == b"LABELONE" and head[536:544] == b"LVM2 001":
        return "lvm"
    if len(head) >= 65536 + 72 and head[65536 + 64 : 65536 + 72] == b"_BHRfS_M":
        return "btrfs"
    if head[3:11] in (b"MSDOS5.0", b"mkfs.fat", b"MSWIN4.1") or head[82:87] == b"FAT32":
        return "vfat"
    if len(head) >= 4096 and head[4086:4096] in (b"SWAPSPACE2", b"SWAP-SPACE"):
        return "swap"
    return "unknown"


def _partitions(disk: Path) -> list[tuple[int, str]]:
    """(offset, label) of each partition of an MBR or GPT table; none without a table."""
    try:
        out = run_tool([binary("sfdisk", "fdisk"), "--json", str(disk)], limits=_PROBE_LIMITS)
    except ToolError:
        return []  # no partition table (or none sfdisk understands)
    try:
        table = json.loads(out)["partitiontable"]
        sector = int(table.get("sectorsize", SECTOR))
        parts = table.get("partitions", [])
    except (ValueError, KeyError, TypeError):
        return []
    found: list[tuple[int, str]] = []
    for index, part in enumerate(parts[:MAX_PARTITIONS], start=1):
        try:
            start = int(part["start"])
        except (KeyError, TypeError, ValueError):
            continue
        if start > 0:
            found.append((start * sector, f"partition {index}"))
    return found


def volumes_of(disk: Path) -> list[Volume]:
    """The file systems on ``disk`` (the exported guest disk), whole disk first."""
    whole = file_system_kind(disk, 0)
    if whole != "unknown":
        return [Volume(0, whole, "whole disk")]
    size = disk.stat().st_size
    return [
        Volume(offset, file_system_kind(disk, offset), label)
        for offset, label in _partitions(disk)
        if offset < size
    ]
