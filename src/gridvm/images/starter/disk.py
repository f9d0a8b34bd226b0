"""The root disk: an ext4 file system filled from a directory, shipped as qcow2.

Nothing is mounted on the host: ``mkfs.ext4 -d`` copies the staged tree into
the new file system. The UUID, the directory hash seed and every timestamp
are fixed, so the same tree always gives the same bytes (``mkfs`` copies each
file's ctime, atime and owner from the host, so ``debugfs`` resets them: the
image is the same whoever builds it, root or not).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from gridvm.common.errors import ToolFailed

from .tools import run

FILESYSTEM_LABEL = "gridvm-root"
# mkfs copies these from the host's stat(), where the builder cannot fix them:
# ctime is the time of the last change, atime moves when mkfs reads a file,
# and a builder that is not root owns the files it stages.
_RESET_FIELDS = ("ctime @{epoch}", "atime @{epoch}", "uid 0", "gid 0")


def uuid_from_hash(hex_digest: str) -> str:
    """A stable UUID derived from the build's input hash."""
    return str(uuid.UUID(hex=hex_digest[:32]))


def make_ext4(tree: Path, raw: Path, size_mib: int, fs_uuid: str, epoch: int) -> None:
    """Create the sparse raw image ``raw`` holding an ext4 copy of ``tree``."""
    extended = f"hash_seed={fs_uuid},root_owner=0:0,nodiscard"
    run(
        [
            "mkfs.ext4", "-q", "-F",
            "-L", FILESYSTEM_LABEL,
            "-U", fs_uuid,
            "-E", extended,
            "-m", "0",
            "-d", tree,
            raw, f"{size_mib}M",
        ],
        env={"E2FSPROGS_FAKE_TIME": str(epoch)},
        timeout=300,
    )  # fmt: skip


def _debugfs_path(relative: str) -> str:
    if any(char.isspace() or char in "\"'\\" for char in relative):
        raise ToolFailed(f"cannot reset the metadata of {relative!r}: unusual characters")
    return "/" + relative


def reset_metadata(tree: Path, raw: Path, epoch: int) -> None:
    """Every inode from ``tree``: ctime and atime ``epoch``, owner root (uid and gid 0)."""
    paths = ["/", "/lost+found"]
    for directory, subdirs, files in os.walk(tree):
        for name in sorted([*subdirs, *files]):
            relative = (Path(directory) / name).relative_to(tree).as_posix()
            paths.append(_debugfs_path(relative))
    fields = [field.format(epoch=epoch) for field in _RESET_FIELDS]
    commands = "".join(f"set_inode_field {path} {field}\n" for path in paths for field in fields)
    script = raw.with_name(raw.name + ".debugfs")
    script.write_text(commands)
    try:
        result = run(
            ["debugfs", "-w", "-f", script, raw],
            env={"E2FSPROGS_FAKE_TIME": str(epoch)},
            timeout=300,
            merge_stderr=True,
        )
    finally:
        script.unlink()
    # debugfs exits 0 even when a command fails; it echoes each command to
    # stdout ("debugfs: ...") and writes complaints ("/path: ...") to stderr.
    errors = [line for line in result.splitlines() if line.startswith("/")]
    if errors:
        raise ToolFailed(f"debugfs could not reset inode metadata: {errors[0]}")


def to_qcow2(raw: Path, qcow2: Path) -> None:
    """Compressed qcow2 copy of a raw image (small on disk, fine as a backing file)."""
    run(["qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2", "-c", raw, qcow2], timeout=600)
