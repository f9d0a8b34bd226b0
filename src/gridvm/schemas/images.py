"""Images: what the store holds and how users change it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from gridvm.schemas.base import Wire


class Visibility(StrEnum):
    private = "private"
    group = "group"
    public = "public"


class TrustClass(StrEnum):
    site = "site"
    certified = "certified"
    user = "user"


class BootMode(StrEnum):
    disk = "disk"
    kernel = "kernel"


class ImageOut(Wire):
    id: str
    name: str
    # Versions of one owner's name count 1, 2, ...; ``latest``: the highest one.
    version: int = 1
    latest: bool = True
    owner: str
    group: str | None
    visibility: Visibility
    trust: TrustClass
    digest: str
    format: str
    uploaded_format: str
    size: int
    virtual_size: int
    boot_mode: BootMode
    kernel_cmdline: str | None
    os: str | None
    min_memory_mb: int
    created_at: datetime
    in_use_by: int = 0
    # The state of its latest certification ("valid", "expired", "revoked"; None: never
    # certified), and until when a valid one lasts or when it lapsed.
    certification: str | None = None
    certification_until: datetime | None = None


class ExportFormat(StrEnum):
    """What a download is written as: the stored qcow2, or a raw disk."""

    qcow2 = "qcow2"
    raw = "raw"


class ImageUpdate(Wire):
    name: str | None = None
    visibility: Visibility | None = None


class UploadCreate(Wire):
    """A resumable upload of a file of ``total_bytes`` bytes, to become image ``name``."""

    name: str
    visibility: Visibility = Visibility.private
    total_bytes: int = Field(ge=0)


class UploadOut(Wire):
    id: str
    name: str
    visibility: Visibility
    total_bytes: int | None
    received_bytes: int
    created_at: datetime
    updated_at: datetime


class ImageCopy(Wire):
    """A copy of an image as the caller's own image ``name``."""

    name: str
