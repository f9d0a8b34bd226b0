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
from gridvm.common.errors import Conflict, Forbidden, InvalidInput, NotFound, PayloadTooLarge
from gridvm.common.names import new_id, validate_name
from gridvm.images.blobstore import BlobStore
from gridvm.images.formats import virtual_size_of
from gridvm.images.ingest import ingest_image
from gridvm.schemas.images import BootMode, ImageOut, ImageUpdate, TrustClass, Visibility
from gridvm.schemas.vms import FINAL_STATES
from gridvm.services.identity import ADMIN_NAME
from gridvm.services.inspection import read_disk, record_inspection, store_inspection
from gridvm.services.presenters import image_out
from gridvm.services.principal import Principal
from gridvm.services.storage_quotas import storage_refusal
from gridvm.services.vulnerabilities import VulnFeed
from gridvm.store.db import Database
from gridvm.store.models import Image, User, Vm

log = logging.getLogger(__name__)

_ENDED = [s.value for s in FINAL_STATES]


@dataclass(frozen=True)
class BlobFile:
    path: Path
    size: int
    filename: str


def find_image(s: Session, who: Principal, ref: str) -> Image:
    """The image ``ref`` names (an id, or a name: own images first, then shared ones)."""
    image = s.get(Image, ref)
    if image is not None and who.can_see_image(image):
        return image
    candidates = s.scalars(select(Image).where(Image.name == ref)).all()
    visible = [i for i in candidates if who.can_see_image(i)]
    own = [i for i in visible if i.owner_id == who.user_id]
    if own:
        return own[0]
    if len(visible) == 1:
        return visible[0]
    if len(visible) > 1:
        site = [i for i in visible if i.trust == TrustClass.site]
        if len(site) == 1:
            return site[0]
        raise Conflict(
            f"{len(visible)} images are named {ref!r}", hint="name the image by its id instead"
        )
    raise NotFound(f"no image {ref!r}", hint="see the images you can use with: gridvm image list")


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
        self._refuse_taken_name(who.user_id, name)
        if visibility == Visibility.public and not who.is_admin:
            raise Forbidden("only admins publish public images", hint="share with your group")
        with self.db.session() as s:  # already full: refuse before receiving anything
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
            self._refuse_taken_name(owner_id, name, s)
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
                self._refuse_taken_name(owner_id, name, s)
                refusal = storage_refusal(
                    s, owner_id, group_id or owner.primary_group_id, ingested.size
                )
                if refusal is not None:
                    raise PayloadTooLarge(f"image storage quota: {refusal}", hint=QUOTA_HINT)
                image = Image(
                    id=new_id("img"),
                    name=name,
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
                log.info("image %s stored for %s", name, owner.name)
                return image_out(image)
        except BaseException:
            self._drop_unreferenced(ingested.digest)
            raise

    def _refuse_taken_name(self, owner_id: str, name: str, s: Session | None = None) -> None:
        def check(session: Session) -> None:
            taken = session.scalar(
                select(Image.id).where(Image.owner_id == owner_id, Image.name == name)
            )
            if taken:
                raise Conflict(
                    f"the owner has an image named {name!r} already",
                    hint="pick another name, or delete or rename the old image",
                )

        if s is not None:
            check(s)
            return
        with self.db.session() as session:
            check(session)

    def list_images(self, who: Principal, name: str | None = None) -> list[ImageOut]:
        with self.db.session() as s:
            query = select(Image).order_by(Image.name, Image.created_at)
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
            return [image_out(i, _in_use(s, i.id)) for i in s.scalars(query).unique().all()]

    def get(self, who: Principal, ref: str) -> ImageOut:
        with self.db.session() as s:
            image = find_image(s, who, ref)
            return image_out(image, _in_use(s, image.id))

    def update(self, who: Principal, ref: str, change: ImageUpdate) -> ImageOut:
        with self.db.session() as s:
            image = find_image(s, who, ref)
            if not who.can_change_image(image):
                raise Forbidden(f"image {image.name!r} belongs to {image.owner.name}")
            if change.name is not None and change.name != image.name:
                validate_name(change.name, what="image name")
                self._refuse_taken_name(image.owner_id, change.name, s)
                image.name = change.name
            if change.visibility is not None:
                if change.visibility == Visibility.public and not who.is_admin:
                    raise Forbidden(
                        "only admins publish public images", hint="share with your group"
                    )
                if change.visibility == Visibility.group and image.group_id is None:
                    raise InvalidInput("the image's owner is in no group")
                image.visibility = change.visibility.value
            s.flush()
            return image_out(image, _in_use(s, image.id))

    def delete(self, who: Principal, ref: str) -> None:
        with self.db.session() as s:
            image = find_image(s, who, ref)
            if not who.can_change_image(image):
                raise Forbidden(f"image {image.name!r} belongs to {image.owner.name}")
            users = _in_use(s, image.id)
            if users:
                raise Conflict(
                    f"image {image.name!r} is used by {users} VM{'s' if users > 1 else ''}",
                    hint="terminate those VMs first; see them with: gridvm vm list",
                )
            digests = [d for d in (image.digest, image.kernel_digest, image.initrd_digest) if d]
            s.delete(image)
        for digest in digests:
            self._drop_unreferenced(digest)

    def content(self, who: Principal, ref: str) -> BlobFile:
        with self.db.session() as s:
            image = find_image(s, who, ref)
            path = self.blobs.path_of(image.digest)
            return BlobFile(path=path, size=path.stat().st_size, filename=f"{image.name}.qcow2")

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
