"""Image inspection use cases: inspect a stored disk, show the result, inspect again.

``record_inspection`` is the one entry point for every path that stores an image (upload,
``vm save``, site templates, recipe builds): it reads the disk without booting it (see
``gridvm.images.inspection``), stores the result in ``image_inspections`` and, when the site
has a vulnerability feed, scans the package list against it at once.
"""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy.orm import Session

from gridvm.images.inspection import DiskInspection, inspect_disk
from gridvm.images.osv import FeedError
from gridvm.services.vulnerabilities import VulnFeed, scan
from gridvm.store.models import Image, ImageInspection, utcnow

log = logging.getLogger(__name__)


def read_disk(path: Path) -> DiskInspection:
    """Inspect a qcow2 (no database); never raises for a bad disk: see ``DiskInspection.state``."""
    return inspect_disk(path)


def store_inspection(
    s: Session, image: Image, result: DiskInspection, feed: VulnFeed | None = None
) -> ImageInspection:
    """Keep ``result`` as the inspection of ``image`` (replacing an older one); scan it."""
    row = s.get(ImageInspection, image.id)
    if row is None:
        row = ImageInspection(image_id=image.id)
        s.add(row)
    row.state = result.state
    row.error = result.error
    row.os_id = result.os_id
    row.os_version = result.os_version
    row.os_name = result.os_name
    row.packages = result.packages
    row.findings = result.findings
    row.inspected_at = utcnow()
    row.vulns = None
    row.vuln_feed = None
    row.scanned_at = None
    row.worst_severity = None
    if feed is not None and result.state == "ok":
        try:
            scan(row, feed.latest())
        except FeedError as exc:  # scanned later by the feed watcher
            log.warning("image %s not scanned yet: %s", image.name, exc)
    s.flush()
    return row


def record_inspection(
    s: Session, image: Image, path: Path, feed: VulnFeed | None = None
) -> ImageInspection:
    """Inspect the disk at ``path`` (the image's qcow2) and store the result for ``image``."""
    result = read_disk(path)
    log.info(
        "image %s inspected: %s%s",
        image.name,
        result.state,
        f" ({result.error})" if result.error else "",
    )
    return store_inspection(s, image, result, feed)
