"""Image use cases: upload, list, share, rename, download, delete, site templates."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from gridvm.common.config import SiteLimits
from gridvm.common.errors import Conflict, Forbidden, PayloadTooLarge
from gridvm.common.names import new_id, validate_name
from gridvm.images.blobstore import BlobStore
from gridvm.images.formats import export_raw, virtual_size_of
from gridvm.images.ingest import ingest_image
from gridvm.schemas.images import (
    BootMode,
    ExportFormat,
    ImageOut,
    ImageUpdate,
    TrustClass,
    Visibility,
)
from gridvm.schemas.vms import FINAL_STATES
from gridvm.services.identity import ADMIN_NAME
from gridvm.services.image_copies import copy_image_row
from gridvm.services.image_sharing import check_publish, may_withdraw
from gridvm.services.image_versions import (
    find_image as find_image,  # re-exported: callers resolve references through here too
)
from gridvm.services.image_versions import (
    latest_ids,
    next_version,
    parse_ref,
    versions_of,
)
from gridvm.services.inspection import read_disk, record_inspection, store_inspection
from gridvm.services.presenters import image_out
from gridvm.services.principal import Principal
from gridvm.services.storage_quotas import storage_refusal
from gridvm.services.vulnerabilities import VulnFeed
from gridvm.store.db import Database
from gridvm.store.models import Image, ImageCertification, User, Vm

log = logging.getLogger(__name__)

_ENDED = [s.value for s in FINAL_STATES]


@dataclass(frozen=True)
class BlobFile:
    path: Path
    size: int
    filename: str
    # A file made for this response (an export): delete it once sent.
    temporary: bool = False


def _is_latest(s: Session, who: Principal, image: Image) -> bool:
    """Whether ``image`` is the highest version of its name that ``who`` may see."""
    visible = versions_of(s, who, image)
    return not visible or visible[-1].id == image.id  # not visible: just withdrawn from them


def _in_use(s: Session, image_id: str) -> int:
    count = s.scalar(select(func.count()).where(Vm.image_id == image_id, Vm.state.not_in(_ENDED)))
    return int(count or 0)


QUOTA_HINT = "delete images you no longer need (gridvm image rm), or ask for a larger quota"


class ImageService:
    def __init__(self, db: Database, blobs: BlobStore, limits: SiteLimits) -> None:
        self.db = db
        self.blobs = blobs
        self.limits = limits
        # The site's vulnerability feed: new images are scanned when inspected.
        self.vuln_feed: VulnFeed | None = None

    def upload(
        self, who: Principal, name: str, visibility: Visibility, chunks: Iterable[bytes]
    ) -> ImageOut:
        validate_name(name, what="image name")
        with self.db.session() as s:  # already full: refuse before receiving anything
            check_publish(s, who, who.user_id, who.primary_group_id, visibility)
            full = storage_refusal(s, who.user_id, who.primary_group_id, 0)
        if full is not None:
            raise PayloadTooLarge(f"image storage quota: {full}", hint=QUOTA_HINT)
        return self._store(chunks, who.user_id, who.primary_group_id, name, visibility)

    def create_from_vm(self, vm_id: str, chunks: Iterable[bytes]) -> ImageOut:
        """Make the image a ``vm save`` asked for from the disk the VM's agent sends.

        The disk was the user's to change, so it is inspected like any upload. The new
        image is private to the VM's owner and boots like the VM's image did.
        """
        with self.db.session() as s:
            vm = s.get_one(Vm, vm_id)
            if vm.save_as is None or vm.image is None:
                raise Conflict(f"VM {vm_id} has no save under way")
            name, owner_id, source_id = vm.save_as, vm.owner_id, vm.image.id
        return self._store(
            chunks, owner_id, None, name, Visibility.private, boots_like=source_id, source="save"
        )

    def _store(
        self,
        chunks: Iterable[bytes],
        owner_id: str,
        group_id: str | None,
        name: str,
        visibility: Visibility,
        boots_like: str | None = None,
        source: str = "upload",
    ) -> ImageOut:
        """Inspect and store a user's disk as a new ``user``-class image; with ``boots_like``,
        it boots as that image does (its kernel, initrd and command line). Nothing is kept
        if anything fails."""
        ingested = ingest_image(
            self.blobs,
            chunks,
            max_bytes=self.limits.max_upload_bytes,
            max_virtual_size=self.limits.max_image_virtual_size,
        )
        try:
            # Read before the transaction: reading an untrusted disk may take a while.
            inspected = read_disk(self.blobs.path_of(ingested.digest))
            with self.db.session() as s:
                # Locked: two uploads of one owner are checked against the quota in turn.
                owner = s.get_one(User, owner_id, with_for_update=True)
                refusal = storage_refusal(
                    s, owner_id, group_id or owner.primary_group_id, ingested.size
                )
                if refusal is not None:
                    raise PayloadTooLarge(f"image storage quota: {refusal}", hint=QUOTA_HINT)
                image = Image(
                    id=new_id("img"),
                    name=name,
                    # A name the owner has already gets its next version.
                    version=next_version(s, owner_id, name),
                    owner_id=owner_id,
                    group_id=group_id or owner.primary_group_id,
                    visibility=visibility.value,
                    trust=TrustClass.user.value,
                    digest=ingested.digest,
                    format="qcow2",
                    uploaded_format=ingested.format_uploaded,
                    size=ingested.size,
                    virtual_size=ingested.virtual_size,
                    boot_mode=BootMode.disk.value,
                    min_memory_mb=64,
                    source=source,
                )
                if boots_like is not None:
                    model = s.get_one(Image, boots_like)
                    image.boot_mode = model.boot_mode
                    image.kernel_digest = model.kernel_digest
                    image.initrd_digest = model.initrd_digest
                    image.kernel_cmdline = model.kernel_cmdline
                    image.os = model.os
                    image.min_memory_mb = model.min_memory_mb
                s.add(image)
                s.flush()
                store_inspection(s, image, inspected, self.vuln_feed)
                s.refresh(image)
                log.info("image %s:%d stored for %s", name, image.version, owner.name)
                return image_out(image)
        except BaseException:
            self._drop_unreferenced(ingested.digest)
            raise

    def copy(self, who: Principal, ref: str, new_name: str) -> ImageOut:
        """A private copy of an image ``who`` may see, as ``who``'s image ``new_name`` (a
        name they have already gets its next version). No byte is copied: the copy points
        at the same stored disk, which stays while any image uses it. A copy of a site
        template or a certified image is ``certified`` (a record says of what); of a
        ``user`` image, ``user``. It counts in the storage quota like any image."""
        validate_name(new_name, what="image name")
        with self.db.session() as s:
            owner = s.get_one(User, who.user_id, with_for_update=True)
            source = find_image(s, who, ref)
            group_id = who.primary_group_id or owner.primary_group_id
            refusal = storage_refusal(s, who.user_id, group_id, source.size)
            if refusal is not None:
                raise PayloadTooLarge(f"image storage quota: {refusal}", hint=QUOTA_HINT)
            image = copy_image_row(s, source, who.user_id, group_id, new_name)
            log.info(
                "image %s:%d copied from %s for %s", new_name, image.version, source.id, who.name
            )
            return image_out(image)

    def _refuse_rename_onto(self, s: Session, owner_id: str, name: str) -> None:
        taken = s.scalar(select(Image.id).where(Image.owner_id == owner_id, Image.name == name))
        if taken:
            raise Conflict(
                f"the owner has an image named {name!r} already",
                hint="pick another name, or delete or rename the old image",
            )

    def list_images(
        self, who: Principal, name: str | None = None, all_versions: bool = False
    ) -> list[ImageOut]:
        """The images ``who`` may use; only the latest visible version of each name unless
        ``all_versions``."""
        with self.db.session() as s:
            query = select(Image).order_by(Image.name, Image.version, Image.created_at)
            if name:
                query = query.where(Image.name == name)
            if not who.is_officer:  # officers inspect and certify any image
                query = query.where(
                    or_(
                        Image.owner_id == who.user_id,
                        Image.visibility == Visibility.public.value,
                        (Image.visibility == Visibility.group.value)
                        & Image.group_id.in_(who.group_ids),
                    )
                )
            images = list(s.scalars(query).unique().all())
            latest = latest_ids(images)
            return [
                image_out(i, _in_use(s, i.id), latest=i.id in latest)
                for i in images
                if all_versions or i.id in latest
            ]

    def versions(self, who: Principal, ref: str) -> list[ImageOut]:
        """Every version (that ``who`` may see) of the name ``ref`` resolves to, oldest first."""
        with self.db.session() as s:
            found = versions_of(s, who, find_image(s, who, ref))
            latest = found[-1].id if found else None
            return [image_out(i, _in_use(s, i.id), latest=i.id == latest) for i in found]

    def get(self, who: Principal, ref: str) -> ImageOut:
        with self.db.session() as s:
            image = find_image(s, who, ref)
            return image_out(image, _in_use(s, image.id), latest=_is_latest(s, who, image))

    def update(self, who: Principal, ref: str, change: ImageUpdate) -> ImageOut:
        """Rename (every version of the name) and/or change who may use (this version)."""
        with self.db.session() as s:
            image = find_image(s, who, ref)
            withdrawing = change.name is None and change.visibility == Visibility.private
            if not who.can_change_image(image) and not (
                withdrawing and may_withdraw(s, who, image)
            ):
                raise Forbidden(f"image {image.name!r} belongs to {image.owner.name}")
            if change.name is not None and change.name != image.name:
                validate_name(change.name, what="image name")
                self._refuse_rename_onto(s, image.owner_id, change.name)
                for version in s.scalars(
                    select(Image).where(Image.owner_id == image.owner_id, Image.name == image.name)
                ).all():
                    version.name = change.name
            if change.visibility is not None and change.visibility.value != image.visibility:
                check_publish(s, who, image.owner_id, image.group_id, change.visibility)
                image.visibility = change.visibility.value
            s.flush()
            return image_out(image, _in_use(s, image.id), latest=_is_latest(s, who, image))

    def delete(self, who: Principal, ref: str, all_versions: bool = False) -> list[str]:
        """Delete the image ``ref`` names (an id or NAME:N: that version). ``NAME`` alone
        deletes its only version, and is refused while the name has several, unless
        ``all_versions``. Nothing is deleted if any of them is in use. Returns the ids."""
        with self.db.session() as s:
            image = find_image(s, who, ref)
            if not who.can_change_image(image):
                raise Forbidden(f"image {image.name!r} belongs to {image.owner.name}")
            doomed = [image]
            names_version = s.get(Image, ref) is not None or parse_ref(ref)[1] is not None
            if all_versions or not names_version:
                siblings = versions_of(s, who, image)
                if len(siblings) > 1 and not all_versions:
                    listed = ", ".join(f"{i.name}:{i.version}" for i in siblings)
                    raise Conflict(
                        f"image {image.name!r} has {len(siblings)} versions ({listed})",
                        hint=f"delete one with: gridvm image rm {image.name}:{image.version};"
                        " or all of them with --all-versions",
                    )
                doomed = siblings
            for i in doomed:
                users = _in_use(s, i.id)
                if users:
                    raise Conflict(
                        f"image {i.name}:{i.version} is used by {users}"
                        f" VM{'s' if users > 1 else ''}",
                        hint="terminate those VMs first; see them with: gridvm vm list",
                    )
            digests = {d for i in doomed for d in (i.digest, i.kernel_digest, i.initrd_digest) if d}
            ids = [i.id for i in doomed]
            for i in doomed:
                s.delete(i)
        for digest in digests:
            self._drop_unreferenced(digest)
        return ids

    def content(self, who: Principal, ref: str, fmt: ExportFormat = ExportFormat.qcow2) -> BlobFile:
        """The image's disk as stored (qcow2), or exported as a sparse raw file made for
        this request (``temporary``: the caller deletes it once sent)."""
        with self.db.session() as s:
            image = find_image(s, who, ref)
            path = self.blobs.path_of(image.digest)
            stem = f"{image.name}-{image.version}"
        if fmt == ExportFormat.qcow2:
            return BlobFile(path=path, size=path.stat().st_size, filename=f"{stem}.qcow2")
        raw = self.blobs.make_temp(".raw")
        try:
            export_raw(path, raw)
        except BaseException:
            raw.unlink(missing_ok=True)
            raise
        return BlobFile(path=raw, size=raw.stat().st_size, filename=f"{stem}.raw", temporary=True)

    def _drop_unreferenced(self, digest: str) -> None:
        with self.db.session() as s:
            used = s.scalar(
                select(func.count()).where(
                    or_(
                        Image.digest == digest,
                        Image.kernel_digest == digest,
                        Image.initrd_digest == digest,
                    )
                )
            )
        if not used and self.blobs.exists(digest):
            self.blobs.delete(digest)

    # --- images built from a recipe (services/builds.py) --------------------
    def store_built(
        self,
        owner_id: str,
        name: str,
        qcow2: Path,
        *,
        template_id: str,
        trust: TrustClass,
        certification: str | None,
    ) -> ImageOut:
        """Register a recipe build's disk (``qcow2`` is consumed) as a private image of
        ``owner_id`` that boots like the template, within the owner's storage quota.
        With ``certification`` (the reason), a ``certified`` image also gets its record
        of trust by construction. Nothing is kept if anything fails."""
        digest = self.blobs.add_file(qcow2)
        try:
            size = self.blobs.size_of(digest)
            virtual_size = virtual_size_of(self.blobs.path_of(digest))
            inspected = read_disk(self.blobs.path_of(digest))  # like every stored image
            with self.db.session() as s:
                owner = s.get_one(User, owner_id, with_for_update=True)
                refusal = storage_refusal(s, owner_id, owner.primary_group_id, size)
                if refusal is not None:
                    raise PayloadTooLarge(f"image storage quota: {refusal}", hint=QUOTA_HINT)
                template = s.get_one(Image, template_id)
                image = Image(
                    id=new_id("img"),
                    name=name,
                    # Building a name the owner has already makes its next version.
                    version=next_version(s, owner_id, name),
                    owner_id=owner_id,
                    group_id=owner.primary_group_id,
                    visibility=Visibility.private.value,
                    trust=trust.value,
                    digest=digest,
                    format="qcow2",
                    uploaded_format="qcow2",
                    size=size,
                    virtual_size=virtual_size,
                    boot_mode=template.boot_mode,
                    kernel_digest=template.kernel_digest,
                    initrd_digest=template.initrd_digest,
                    kernel_cmdline=template.kernel_cmdline,
                    os=template.os,
                    min_memory_mb=template.min_memory_mb,
                    source="build",
                )
                s.add(image)
                s.flush()
                store_inspection(s, image, inspected, self.vuln_feed)
                if trust == TrustClass.certified and certification:
                    s.add(
                        ImageCertification(
                            id=new_id("crt"),
                            image_id=image.id,
                            source="construction",
                            certified_by="gridvm-builder",
                            reason=certification,
                        )
                    )
                s.flush()
                s.refresh(image)
                log.info(
                    "built image %s:%d stored for %s (%s)",
                    name,
                    image.version,
                    owner.name,
                    trust.value,
                )
                return image_out(image)
        except BaseException:
            self._drop_unreferenced(digest)
            raise

    # --- site templates -----------------------------------------------------
    def register_starters(self, starter_dir: Path) -> list[str]:
        """Register every built starter image (``<dir>/<name>/manifest.json``) as a public site
        template, or refresh it when it was rebuilt. Returns the names registered or changed."""
        changed: list[str] = []
        if not starter_dir.is_dir():
            log.warning("no starter images in %s: run 'make install' to build them", starter_dir)
            return changed
        for manifest_path in sorted(starter_dir.glob("*/manifest.json")):
            if self._register_starter(manifest_path):
                changed.append(manifest_path.parent.name)
        return changed

    def _add_copy(self, path: Path) -> str:
        """Store a copy of ``path`` (the build output stays where it is)."""
        temp = self.blobs.make_temp()
        shutil.copyfile(path, temp)
        return self.blobs.add_file(temp)

    def _register_starter(self, manifest_path: Path) -> bool:
        manifest = json.loads(manifest_path.read_text())
        base = manifest_path.parent
        name = validate_name(str(manifest["name"]), what="template name")
        disk = self._add_copy(base / manifest["disk"])
        kernel = self._add_copy(base / manifest["kernel"]) if manifest.get("kernel") else None
        initrd = self._add_copy(base / manifest["initrd"]) if manifest.get("initrd") else None
        virtual_size = virtual_size_of(self.blobs.path_of(disk))
        with self.db.session() as s:
            admin = s.scalar(select(User).where(User.name == ADMIN_NAME))
            if admin is None:
                raise RuntimeError("register starters after the admin exists")
            image = s.scalar(select(Image).where(Image.owner_id == admin.id, Image.name == name))
            if image is not None and (image.digest, image.kernel_digest, image.initrd_digest) == (
                disk,
                kernel,
                initrd,
            ):
                return False
            if image is None:
                image = Image(id=new_id("img"), name=name, owner_id=admin.id)
                s.add(image)
            image.group_id = None
            image.visibility = Visibility.public.value
            image.trust = TrustClass.site.value
            image.source = "template"
            image.digest = disk
            image.format = "qcow2"
            image.uploaded_format = "qcow2"
            image.size = self.blobs.size_of(disk)
            image.virtual_size = virtual_size
            image.boot_mode = (BootMode.kernel if kernel else BootMode.disk).value
            image.kernel_digest = kernel
            image.initrd_digest = initrd
            image.kernel_cmdline = manifest.get("kernel_cmdline")
            image.os = manifest.get("os")
            image.min_memory_mb = int(manifest.get("min_memory_mb", 64))
            s.flush()
            record_inspection(s, image, self.blobs.path_of(disk), self.vuln_feed)
        log.info("site template %s registered (%s)", name, disk)
        return True
