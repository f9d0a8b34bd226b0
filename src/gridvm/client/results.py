"""Job results on this side: unpacking the tar a VM's job left under ``$GRIDVM_OUTPUT``.

A results archive is written by a guest, so it is untrusted. It may hold only
regular files and folders under relative paths; anything else (an absolute
path, ``..``, a symbolic or hard link, a device, a FIFO) refuses the whole
archive before a byte is written. What passes is unpacked with Python's
``data`` extraction filter as a second guard, into a hidden folder next to the
destination that is renamed into place only once everything is out.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from gridvm.client.errors import DestinationNotEmpty, UnsafeArchive
from gridvm.common.errors import GridvmError

_KINDS = {
    tarfile.SYMTYPE: "a symbolic link",
    tarfile.LNKTYPE: "a hard link",
    tarfile.CHRTYPE: "a character device",
    tarfile.BLKTYPE: "a block device",
    tarfile.FIFOTYPE: "a FIFO",
}


@dataclass(frozen=True)
class Unpacked:
    """Where the results went, and how many files and bytes they hold."""

    path: Path
    files: int
    bytes: int


def extract_results(
    archive: str | os.PathLike[str], dest: str | os.PathLike[str], *, replace: bool = False
) -> Unpacked:
    """Unpack the results tar ``archive`` into the folder ``dest`` (made if missing).

    ``dest`` may exist if it is empty; a non-empty ``dest`` raises
    ``DestinationNotEmpty`` unless ``replace``, which swaps the old folder for
    the new one only once the new one is complete. An archive with anything
    but regular files and folders under relative paths raises ``UnsafeArchive``
    and leaves nothing behind; so does a file that is not an uncompressed tar.
    """
    if not hasattr(tarfile, "data_filter"):
        raise GridvmError(
            "this Python cannot unpack results safely (no tarfile extraction filters)",
            hint="use Python 3.11.4 or later",
        )
    archive, dest = Path(archive), Path(dest)
    if _holds_something(dest) and not replace:
        raise DestinationNotEmpty(
            f"{dest} exists and is not empty",
            hint="unpack into another folder, or replace this one",
        )
    try:
        tar = tarfile.open(archive, "r:")  # noqa: SIM115 - closed below
    except tarfile.TarError as exc:
        raise UnsafeArchive(
            f"the results for {dest} are not an uncompressed tar archive ({exc})",
            hint="is the server the same gridvm version as this client?",
        ) from exc
    try:
        with tar:
            members = _safe_members(tar, dest)
            staging = _new_folder(dest.parent, f".{dest.name}.part-")
            try:
                tar.extractall(staging, members=members, filter="data")
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
    except tarfile.FilterError as exc:
        raise UnsafeArchive(
            f"refused to unpack the results into {dest}: {exc}",
            hint="results may hold only regular files and folders; nothing was unpacked",
        ) from exc
    except tarfile.TarError as exc:
        raise UnsafeArchive(
            f"the results for {dest} are a damaged tar archive ({exc})",
            hint="download them again; nothing was unpacked",
        ) from exc
    _swap_in(staging, dest)
    files = [m for m in members if m.isreg()]
    return Unpacked(dest, len(files), sum(m.size for m in files))


def _safe_members(tar: tarfile.TarFile, dest: Path) -> list[tarfile.TarInfo]:
    """Every member, checked: relative paths, regular files and folders only."""
    safe: list[tarfile.TarInfo] = []
    for member in tar.getmembers():
        why = _unsafe(member)
        if why is not None:
            raise UnsafeArchive(
                f"refused to unpack the results into {dest}: {member.name!r} is {why}",
                hint="results may hold only regular files and folders; nothing was unpacked",
            )
        if PurePosixPath(member.name).parts not in ((), (".",)):  # the top folder itself
            safe.append(member)
    return safe


def _unsafe(member: tarfile.TarInfo) -> str | None:
    name = member.name
    if not name or "\0" in name:
        return "an empty or invalid name"
    if name.startswith(("/", os.sep)):
        return "an absolute path"
    if ".." in PurePosixPath(name).parts:
        return "a path outside the results folder ('..')"
    if member.isreg() or member.isdir():
        return None
    kind = _KINDS.get(member.type, f"of tar type {member.type!r}")
    if member.issym() or member.islnk():
        kind += f" (to {member.linkname!r})"
    return kind


def _holds_something(path: Path) -> bool:
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        return True
    return path.is_dir() and any(path.iterdir())


def _new_folder(parent: Path, prefix: str) -> Path:
    """A fresh folder in ``parent`` (made if missing), with the usual permissions (umask)."""
    parent.mkdir(parents=True, exist_ok=True)
    while True:
        candidate = parent / f"{prefix}{secrets.token_hex(4)}"
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate


def _swap_in(staging: Path, dest: Path) -> None:
    """Put the complete ``staging`` folder at ``dest``; an old ``dest`` goes only after."""
    old: Path | None = None
    try:
        if dest.is_dir() and not dest.is_symlink() and not any(dest.iterdir()):
            dest.rmdir()
        elif dest.is_symlink() or dest.exists():
            old = dest.parent / f".{dest.name}.old-{secrets.token_hex(4)}"
            dest.rename(old)
        staging.rename(dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if old is not None and not dest.exists():
            old.rename(dest)
        raise
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old)
        else:
            old.unlink()
