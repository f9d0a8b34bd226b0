"""Volumes: persistent user disks that outlive the VMs they are attached to."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from gridvm.schemas.base import Wire


class VolumeState(StrEnum):
    available = "available"  # attached to no VM
    attached = "attached"  # to one VM (``vm``), until that VM ends or it is detached
    deleting = "deleting"  # waiting for its host's agent to delete the file


class VolumeCreate(Wire):
    name: str = Field(max_length=64)
    # Like "1G", "512M" (powers of 1024).
    size: str = Field(max_length=32)


class VolumeOut(Wire):
    id: str
    name: str
    owner: str
    size_bytes: int
    state: VolumeState
    # The host holding its file (set when a VM first uses it); its VMs run there.
    host: str | None
    vm: str | None
    # What the guest sees: /dev/disk/by-id/virtio-<serial>, /sys/block/vdX/serial.
    serial: str
    created_at: datetime


class VolumeAttach(Wire):
    volume: str = Field(max_length=64)  # name or id


class VolumeAttachment(Wire):
    """A volume as the agent attaches it to a VM."""

    id: str
    size_bytes: int
    serial: str
