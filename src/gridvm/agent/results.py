"""Read a finished job's results from its results disk.

The guest writes one tar straight onto a raw virtio disk: ``.gridvm/exit_status``
(the job's exit status) and ``output/...`` (what the job left in $GRIDVM_OUTPUT).
The disk is the guest's, so the tar is untrusted: only regular files and
directories below ``output/`` are kept, with safe relative names, and repacked
into a new tar for the server.
"""

from __future__ import annotations

import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

STATUS_MEMBER = ".gridvm/exit_status"
OUTPUT_DIR = "output"


@dataclass(frozen=True)
class JobOutcome:
    exit_status: int | None
    files: int
    size: int
    # Set when the results disk held something unusable (said in the VM's exit reason).
    problem: str | None = None


def _safe_name(name: str) -> str | None:
    """``output/a/b.txt`` → ``a/b.txt``; None for anything outside ``output/`` or unsafe."""
    path = PurePosixPath(name.lstrip("./") if name.startswith("./") else name)
    parts = path.parts
    if not parts or parts[0] != OUTPUT_DIR or path.is_absolute() or ".." in parts:
        return None
    rest = PurePosixPath(*parts[1:]) if len(parts) > 1 else None
    return str(rest) if rest is not None else None


def _exit_status(archive: tarfile.TarFile, member: tarfile.TarInfo) -> int | None:
    if not member.isfile() or member.size > 16:
        return None
    f = archive.extractfile(member)
    text = f.read().decode("ascii", "replace").strip() if f else ""
    return int(text) if text.lstrip("-").isdigit() else None


def collect_results(disk: Path, dest: Path) -> JobOutcome:
    """Read ``disk``; write the job's files as a clean tar to ``dest`` (only if there are any)."""
    exit_status: int | None = None
    files = size = 0
    try:
        with (
            tarfile.open(disk, mode="r:") as archive,
            tarfile.open(dest, mode="w") as clean,
        ):
            for member in archive:
                name = member.name.removeprefix("./")
                if name == STATUS_MEMBER:
                    exit_status = _exit_status(archive, member)
                    continue
                safe = _safe_name(name)
                if safe is None or not (member.isfile() or member.isdir()):
                    continue
                info = tarfile.TarInfo(safe)
                info.mode = 0o755 if member.isdir() else 0o644
                info.mtime = member.mtime
                if member.isdir():
                    info.type = tarfile.DIRTYPE
                    clean.addfile(info)
                    continue
                info.size = member.size
                clean.addfile(info, archive.extractfile(member))
                files += 1
                size += member.size
    except (tarfile.TarError, OSError, ValueError) as exc:
        dest.unlink(missing_ok=True)
        return JobOutcome(exit_status, 0, 0, f"the results disk could not be read: {exc}")
    if files == 0:
        dest.unlink(missing_ok=True)
    return JobOutcome(exit_status, files, size)
