"""One inspection of a stored qcow2: OS, installed packages and the credential sweep."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gridvm.images.inspection.credentials import sweep
from gridvm.images.inspection.export import exported
from gridvm.images.inspection.extfs import Budget, Entry, ExtFs, InspectionLimit
from gridvm.images.inspection.osrelease import parse_os_release
from gridvm.images.inspection.packages import dpkg_packages, rpm_packages
from gridvm.images.inspection.tools import ToolError
from gridvm.images.inspection.volumes import Volume, volumes_of

OS_RELEASE = ("/etc/os-release", "/usr/lib/os-release")
DPKG_STATUS = "/var/lib/dpkg/status"
RPM_DBS = ("/usr/lib/sysimage/rpm", "/var/lib/rpm")
MAX_TEXT = 64 * 1024**2


class Unreadable(Exception):
    """The image holds no file system gridvm can read."""


@dataclass
class DiskInspection:
    state: str  # "ok" or "unreadable"
    error: str | None = None
    os_id: str | None = None
    os_version: str | None = None
    os_name: str | None = None
    packages: list[dict[str, Any]] = field(default_factory=list)
    findings: list[dict[str, str]] = field(default_factory=list)
    volume: str | None = None  # where the file system read was, e.g. "partition 2"


def _no_ext_reason(volumes: list[Volume]) -> str:
    if not volumes:
        return (
            "no file system or partition table was found on the disk "
            "(it is empty, or not a disk of an operating system gridvm can read)"
        )
    kinds = ", ".join(f"{v.kind} ({v.where})" for v in volumes)
    if any(v.kind == "luks" for v in volumes):
        return f"the disk is encrypted (found: {kinds}); its contents cannot be inspected"
    return (
        f"no ext2/3/4 file system was found (found: {kinds}); "
        "gridvm inspects only ext2/3/4 root file systems"
    )


def _text(fs: ExtFs, path: str) -> str | None:
    entry = fs.lookup(path)
    if entry is None or not entry.is_file:
        return None
    data = fs.read(entry, MAX_TEXT)
    return None if data is None else data.decode("utf-8", errors="replace")


def _rpm(fs: ExtFs, workdir: Path) -> list[dict[str, Any]]:
    for path in RPM_DBS:
        directory = fs.lookup(path)
        if directory is None or not directory.is_dir:
            continue
        files: list[Entry] = [e for e in fs.listdir(directory.inode) if e.is_file]
        if not any(e.name in ("rpmdb.sqlite", "Packages", "Packages.db") for e in files):
            continue
        target = Path(tempfile.mkdtemp(prefix="rpmdb-", dir=workdir))
        fs.dump_into(files, target)
        return rpm_packages(target)
    return []


def _read(fs: ExtFs, workdir: Path, where: str) -> DiskInspection:
    result = DiskInspection(state="ok", volume=where)
    for path in OS_RELEASE:
        text = _text(fs, path)
        if text is not None:
            info = parse_os_release(text)
            result.os_id = info.get("ID", "")[:32] or None
            result.os_version = info.get("VERSION_ID", "")[:32] or None
            result.os_name = (info.get("PRETTY_NAME") or info.get("NAME") or "")[:128] or None
            break
    status = _text(fs, DPKG_STATUS)
    if status is not None:
        result.packages += dpkg_packages(status)
    result.packages += _rpm(fs, workdir)
    result.findings = sweep(fs)
    return result


def inspect_disk(qcow2: Path, budget: Budget | None = None) -> DiskInspection:
    """Inspect the guest disk in ``qcow2``; an unreadable disk is a result, not an error."""
    budget = budget or Budget()
    workdir = Path(tempfile.mkdtemp(prefix="gridvm-inspect-files-"))
    try:
        with exported(qcow2) as disk:
            volumes = volumes_of(disk)
            readable: list[tuple[ExtFs, Volume]] = []
            for volume in (v for v in volumes if v.kind == "ext"):
                fs = ExtFs(disk, volume.offset, budget, workdir)
                try:
                    fs.check_readable()
                except ToolError:
                    continue
                if any(fs.lookup(p) is not None for p in OS_RELEASE):
                    readable.insert(0, (fs, volume))
                else:
                    readable.append((fs, volume))
            if not readable:
                if any(v.kind == "ext" for v in volumes):
                    raise Unreadable(
                        "the ext file system on the disk is damaged: debugfs cannot read it"
                    )
                raise Unreadable(_no_ext_reason(volumes))
            fs, volume = readable[0]
            return _read(fs, workdir, volume.where)
    except Unreadable as exc:
        return DiskInspection(state="unreadable", error=str(exc))
    except InspectionLimit as exc:
        return DiskInspection(state="unreadable", error=f"inspection stopped: {exc}")
    except ToolError as exc:
        return DiskInspection(state="unreadable", error=f"the disk could not be read: {exc}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
