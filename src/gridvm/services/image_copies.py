"""Copying an image: a new image row of another owner on the same stored disk.

The stored blobs are content-addressed and deleted only when no image row names their
digest any more (``ImageService._drop_unreferenced``), so a copy shares the source's disk,
kernel and initrd and deleting either image never deletes what the other uses.

What was learnt about the disk goes with it: the inspection and its vulnerability scan
(kept per image) are copied. The trust does not simply go with it: a copy of a site
template or of a certified image is certified "by construction" (it is byte-identical),
lasting as long as the source's certification did; a copy of a ``user`` image is ``user``.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from gridvm.common.names import new_id
from gridvm.schemas.images import TrustClass, Visibility
from gridvm.services.certification_state import certification_standing
from gridvm.services.image_versions import next_version
from gridvm.store.models import Image, ImageCertification, ImageInspection, utcnow

COPY_CERTIFIER = "gridvm-copy"

# Every column of an image that describes its content and how it boots.
_CONTENT_FIELDS = (
    "sha512",
    "digest",
    "format",
    "uploaded_format",
    "size",
    "virtual_size",
    "boot_mode",
    "kernel_digest",
    "initrd_digest",
    "kernel_cmdline",
    "os",
    "min_memory_mb",
)

_INSPECTION_FIELDS = (
    "state",
    "error",
    "os_id",
    "os_version",
    "os_name",
    "packages",
    "findings",
    "inspected_at",
    "vulns",
    "vuln_feed",
    "scanned_at",
    "worst_severity",
)


def copy_image_row(
    s: Session, source: Image, owner_id: str, group_id: str | None, name: str
) -> Image:
    """Add (and return, refreshed) ``owner_id``'s private copy of ``source`` named ``name``."""
    now = utcnow()
    standing = certification_standing(source, now)
    trusted = standing.image_class in (TrustClass.site, TrustClass.certified)
    image = Image(
        id=new_id("img"),
        name=name,
        version=next_version(s, owner_id, name),
        owner_id=owner_id,
        group_id=group_id,
        visibility=Visibility.private.value,
        trust=(TrustClass.certified if trusted else TrustClass.user).value,
        source="copy",
    )
    for field in _CONTENT_FIELDS:
        setattr(image, field, getattr(source, field))
    s.add(image)
    s.flush()
    _copy_inspection(s, source, image)
    if trusted:
        s.add(
            ImageCertification(
                id=new_id("crt"),
                image_id=image.id,
                source="construction",
                certified_by=COPY_CERTIFIER,
                reason=_copy_reason(source, standing.image_class),
                certified_at=now,
                expires_at=standing.until,
            )
        )
    s.flush()
    s.refresh(image)
    return image


def _copy_reason(source: Image, cls: TrustClass) -> str:
    what = "site template" if cls == TrustClass.site else "certified image"
    return f"byte-identical copy of {what} {source.name}:{source.version} ({source.id})"


def _copy_inspection(s: Session, source: Image, image: Image) -> None:
    found = s.get(ImageInspection, source.id)
    if found is None:
        return  # the feed watcher inspects images that have none
    row = ImageInspection(image_id=image.id)
    for field in _INSPECTION_FIELDS:
        value = getattr(found, field)
        setattr(row, field, list(value) if isinstance(value, list) else value)
    s.add(row)
