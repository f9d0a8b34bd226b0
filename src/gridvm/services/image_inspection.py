"""Showing inspections and vulnerability scans, inspecting again, and the feed watcher's pass."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridvm.common.errors import Forbidden, NotFound
from gridvm.images.blobstore import BlobStore
from gridvm.images.inspection import DiskInspection
from gridvm.schemas.identity import Role
from gridvm.schemas.inspection import (
    FindingOut,
    InspectionOut,
    InspectionState,
    PackageOut,
    Severity,
    VulnerabilitiesOut,
    VulnOut,
    severity_rank,
)
from gridvm.services.images import find_image
from gridvm.services.inspection import read_disk, store_inspection
from gridvm.services.principal import Principal
from gridvm.services.vulnerabilities import VulnFeed, rescan_all
from gridvm.store.db import Database
from gridvm.store.models import Image, ImageInspection


def may_reinspect(who: Principal, image: Image) -> bool:
    return who.role in (Role.admin, Role.officer) or image.owner_id == who.user_id


def inspection_out(image: Image, row: ImageInspection) -> InspectionOut:
    packages = [PackageOut.model_validate(p) for p in row.packages or []]
    return InspectionOut(
        image_id=image.id,
        image=image.name,
        state=InspectionState(row.state),
        error=row.error,
        os_id=row.os_id,
        os_version=row.os_version,
        os_name=row.os_name,
        package_count=len(packages),
        packages=packages,
        findings=[FindingOut.model_validate(f) for f in row.findings or []],
        inspected_at=row.inspected_at,
        vulns=None if row.vulns is None else [VulnOut.model_validate(v) for v in row.vulns],
        vuln_feed=row.vuln_feed,
        scanned_at=row.scanned_at,
        worst_severity=None if row.worst_severity is None else Severity(row.worst_severity),
    )


class InspectionService:
    def __init__(self, db: Database, blobs: BlobStore, feed: VulnFeed | None = None) -> None:
        self.db = db
        self.blobs = blobs
        self.feed = feed

    def _row(self, s: Session, who: Principal, ref: str) -> tuple[Image, ImageInspection]:
        image = find_image(s, who, ref)
        row = s.get(ImageInspection, image.id)
        if row is None:
            hint = "inspect it with: gridvm image inspect --refresh " + image.name
            raise NotFound(f"image {image.name!r} has not been inspected yet", hint=hint)
        return image, row

    def get(self, who: Principal, ref: str) -> InspectionOut:
        with self.db.session() as s:
            return inspection_out(*self._row(s, who, ref))

    def reinspect(self, who: Principal, ref: str) -> InspectionOut:
        with self.db.session() as s:
            image = find_image(s, who, ref)
            if not may_reinspect(who, image):
                raise Forbidden(
                    f"only the owner of image {image.name!r}, a security officer or an admin "
                    "may inspect it again"
                )
            image_id, path = image.id, self.blobs.path_of(image.digest)
        result = read_disk(path)  # outside any transaction: reading may take a while
        with self.db.session() as s:
            still = s.get(Image, image_id)
            if still is None:
                raise NotFound("the image was deleted while it was inspected")
            row = store_inspection(s, still, result, self.feed)
            return inspection_out(still, row)

    def vulnerabilities(
        self, who: Principal, ref: str, min_severity: Severity = Severity.unknown
    ) -> VulnerabilitiesOut:
        with self.db.session() as s:
            image, row = self._row(s, who, ref)
            floor = severity_rank(min_severity)
            vulns = [
                VulnOut.model_validate(v)
                for v in row.vulns or []
                if severity_rank(v["severity"]) >= floor
            ]
            return VulnerabilitiesOut(
                image_id=image.id,
                image=image.name,
                scanned=row.vuln_feed is not None,
                vuln_feed=row.vuln_feed,
                scanned_at=row.scanned_at,
                worst_severity=None if row.worst_severity is None else Severity(row.worst_severity),
                vulns=vulns,
            )

    def inspect_missing(self, limit: int = 10) -> int:
        """Inspect images stored before inspection existed (a few per call)."""
        with self.db.session() as s:
            todo = s.execute(
                select(Image.id, Image.digest)
                .outerjoin(ImageInspection, ImageInspection.image_id == Image.id)
                .where(ImageInspection.image_id.is_(None))
                .limit(limit)
            ).all()
        for image_id, digest in todo:
            if self.blobs.exists(digest):
                result = read_disk(self.blobs.path_of(digest))
            else:
                error = "the image's disk is missing from the image store"
                result = DiskInspection(state=InspectionState.unreadable.value, error=error)
            with self.db.session() as s:
                image = s.get(Image, image_id)
                if image is not None and s.get(ImageInspection, image_id) is None:
                    store_inspection(s, image, result, self.feed)
        return len(todo)

    def watch_step(self) -> None:
        """One pass of the feed watcher: inspect leftovers, rescan when the feed changed."""
        self.inspect_missing()
        if self.feed is not None:
            rescan_all(self.db, self.feed)
