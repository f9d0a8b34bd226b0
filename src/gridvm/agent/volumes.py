"""The volume files on this host: ``<data-dir>/volumes/<volume-id>.qcow2``.

A volume's file is made (empty, qcow2) when a VM first boots with it, and deleted
only when the server lists the volume as being deleted: never with a VM, never by
the undo of a failed start.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from collections.abc import Iterable, Set
from pathlib import Path

from gridvm.common.names import NAME_RE
from gridvm.images import qemu_img

log = logging.getLogger(__name__)


class VolumeFiles:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path_of(self, volume_id: str) -> Path:
        if not NAME_RE.fullmatch(volume_id):
            raise ValueError(f"unsafe volume id {volume_id!r}")
        return self.root / f"{volume_id}.qcow2"

    def ensure(self, volume_id: str, size_bytes: int) -> Path:
        """The volume's file, made empty (all zeros to the guest) if it does not exist."""
        path = self.path_of(volume_id)
        if path.exists():
            return path
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            qemu_img.run(
                ["create", "-q", "-f", "qcow2", str(tmp), str(size_bytes)],
                limits=qemu_img.CREATE_LIMITS,
            )
            tmp.chmod(0o600)
            with contextlib.suppress(FileExistsError):  # never over a file made meanwhile
                os.link(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        log.info("volume %s made (%d bytes)", volume_id, size_bytes)
        return path

    def delete(self, volume_ids: Iterable[str], in_use: Set[str]) -> list[str]:
        """Delete the files of ``volume_ids`` (those not ``in_use`` by a VM of this host);
        returns the ids whose files are gone."""
        gone = []
        for volume_id in volume_ids:
            if volume_id in in_use:
                log.warning("volume %s is to be deleted but a VM here uses it: kept", volume_id)
                continue
            try:
                self.path_of(volume_id).unlink(missing_ok=True)
            except (OSError, ValueError) as exc:
                log.warning("volume %s not deleted: %s", volume_id, exc)
                continue
            log.info("volume %s deleted", volume_id)
            gone.append(volume_id)
        return gone
