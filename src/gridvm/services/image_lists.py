"""Signed HEPiX image lists: export this site's, follow other sites'.

Export: the site's public ``site`` and ``certified`` images, as a list signed by
the site's endorser (configured, or made in the data dir on first use). Images
booted with a kernel and initrd carry them in the list's gridvm extension (see
``imagelist.document``), served next to the disk.

Subscribe/refresh: fetch the list, verify its signature against the
subscription's CA, check the signer is the subscription's endorser DN and the
list has not expired; only then download the images not held yet (SHA-512
checked, stored like an upload) and register them as public images, certified
by the list until it expires. Images the list no longer names lose that
certification. A list that fails any check changes nothing (but an expired list
ends the certifications it gave), and the reason is kept in ``last_error``.
A kernel-boot image's kernel and initrd are downloaded and checked like its disk;
an entry whose gridvm boot fields are unusable is not taken (the reason is kept).
"""

from __future__ import annotations

import hashlib
import logging
import re
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from gridvm.common.config import ServerConfig
from gridvm.common.errors import Conflict, GridvmError, InvalidInput, NotFound
from gridvm.common.names import new_id, validate_name
from gridvm.images.blobstore import BlobStore, StagedBlob
from gridvm.images.digests import file_hexdigest
from gridvm.images.imagelist import document, endorser, smime
from gridvm.images.ingest import ingest_image
from gridvm.schemas.image_lists import SubscriptionCreate, SubscriptionOut
from gridvm.schemas.images import BootMode, TrustClass, Visibility
from gridvm.services.certification import (
    blocking_vulns,
    credential_findings,
    revoke_valid,
    sync_trust,
)
from gridvm.services.certification_state import certification_standing, is_valid
from gridvm.services.identity import ADMIN_NAME
from gridvm.services.image_versions import next_version
from gridvm.services.inspection import read_disk, store_inspection
from gridvm.services.principal import Principal
from gridvm.services.vulnerabilities import VulnFeed
from gridvm.services.zone_policy import CertState
from gridvm.store.db import Database
from gridvm.store.models import (
    Image,
    ImageCertification,
    ImageInspection,
    ImageListSubscription,
    User,
    utcnow,
)

log = logging.getLogger(__name__)

MAX_LIST_BYTES = 16 * 1024 * 1024
FETCH_TIMEOUT_S = 60.0
CHUNK = 1024 * 1024
PUBLIC_PREFIX = "/api/v1/public/image-list"
BootPart = Literal["disk", "kernel", "initrd"]


def vouched_for(listed: document.ListedImage) -> str:
    """What the list vouches for in one entry, as one SHA-512 (kept as the image's
    ``list_sha512``): its disk's; for a kernel-boot image, that of its disk, kernel,
    initrd and command line together, so that a change of any of them is a new image."""
    boot = listed.kernel_boot
    if boot is None:
        return listed.sha512
    initrd = boot.initrd.sha512 if boot.initrd else ""
    parts = [listed.sha512, boot.kernel.sha512, initrd, boot.cmdline, str(boot.min_memory_mb)]
    return hashlib.sha512("\n".join(parts).encode()).hexdigest()


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-._") or "image"


@dataclass(frozen=True)
class Signed:
    message: bytes
    image_list: document.ImageList


class ImageListService:
    def __init__(
        self,
        db: Database,
        blobs: BlobStore,
        config: ServerConfig,
        vuln_feed: VulnFeed | None = None,
    ) -> None:
        self.db = db
        # Images taken from a list are inspected (and scanned) like uploads.
        self.vuln_feed = vuln_feed
        self.blobs = blobs
        self.config = config
        self.settings = config.images
        # One background round at a time; and one refresh at a time (of any list), so two
        # refreshes never take the same image twice. (Several API replicas would need a
        # database lock here.)
        self._refreshing = threading.Lock()
        self._applying = threading.Lock()

    # --- export ---------------------------------------------------------------
    @property
    def base_url(self) -> str:
        if self.settings.public_url:
            return self.settings.public_url.rstrip("/")
        host = self.config.host
        if host in ("0.0.0.0", "::", ""):  # noqa: S104 - listening everywhere: name this machine
            host = socket.getfqdn()
        return f"http://{host}:{self.config.port}"

    def endorser_credentials(self) -> endorser.Credentials:
        s = self.settings
        if s.endorser_cert is not None and s.endorser_key is not None:
            return endorser.Credentials(s.endorser_cert.read_bytes(), s.endorser_key.read_bytes())
        return endorser.load_or_create(self.config.endorser_dir, socket.gethostname())

    def _sha512(self, s: Session, image: Image) -> str:
        if image.sha512 is None:
            image.sha512 = file_hexdigest(self.blobs.path_of(image.digest), "sha512")
            s.flush()
        return image.sha512

    def _boot_file(self, digest: str, uri: str) -> document.BootFile:
        path = self.blobs.path_of(digest)
        return document.BootFile(
            uri=uri, sha512=file_hexdigest(path, "sha512"), size=path.stat().st_size
        )

    def _kernel_boot(self, image: Image, uri: str) -> document.KernelBoot | None:
        """The list's gridvm boot fields of ``image`` (None: it boots from its disk)."""
        if image.boot_mode != BootMode.kernel.value or image.kernel_digest is None:
            return None
        return document.KernelBoot(
            kernel=self._boot_file(image.kernel_digest, f"{uri}/kernel"),
            initrd=(
                self._boot_file(image.initrd_digest, f"{uri}/initrd")
                if image.initrd_digest
                else None
            ),
            cmdline=image.kernel_cmdline or "",
            min_memory_mb=image.min_memory_mb,
        )

    def export(self, who: Principal | None) -> Signed:
        """The site's list, signed. ``who`` None: the published list (no caller)."""
        if who is not None:
            who.require_officer()
        elif not self.settings.publish_image_list:
            raise NotFound(
                "this site does not publish its image list",
                hint="an officer exports it with: gridvm image-list export",
            )
        creds = self.endorser_credentials()
        cert = x509.load_pem_x509_certificate(creds.cert_pem)
        now = utcnow()
        listed: list[document.ListedImage] = []
        with self.db.session() as s:
            query = (
                select(Image)
                .where(Image.visibility == Visibility.public.value)
                .where(Image.trust.in_([TrustClass.site.value, TrustClass.certified.value]))
                .order_by(Image.name, Image.version)
            )
            for image in s.scalars(query).unique().all():
                standing = certification_standing(image, now)
                if standing.image_class == TrustClass.user:
                    continue
                inspection = s.get(ImageInspection, image.id)
                uri = f"{self.base_url}{PUBLIC_PREFIX}/images/{image.id}"
                listed.append(
                    document.ListedImage(
                        identifier=str(uuid.uuid5(uuid.NAMESPACE_URL, f"gridvm:{image.id}")),
                        title=image.name,
                        description=f"{image.name} v{image.version} ({standing.image_class})",
                        sha512=self._sha512(s, image),
                        size=image.size,
                        uri=uri,
                        version=str(image.version),
                        os=(inspection.os_id if inspection else None) or image.os or "",
                        os_version=(inspection.os_version if inspection else None) or "",
                        kernel_boot=self._kernel_boot(image, uri),
                    )
                )
        fingerprint = cert.fingerprint(hashes.SHA256()).hex()
        image_list = document.ImageList(
            identifier=str(uuid.uuid5(uuid.NAMESPACE_URL, f"gridvm-imagelist:{fingerprint}")),
            title=f"gridvm images of {self.base_url}",
            description="site and certified images of this gridvm site",
            created=now,
            expires=now + timedelta(days=self.settings.image_list_valid_days),
            version=now.strftime("%Y%m%d%H%M%S"),
            uri=f"{self.base_url}{PUBLIC_PREFIX}",
            source=self.base_url,
            endorser=document.Endorser(
                dn=smime.openssl_dn(cert.subject),
                ca=smime.openssl_dn(cert.issuer),
                creator="gridvm",
            ),
            images=tuple(listed),
        )
        message = smime.sign(document.to_json(image_list), creds.cert_pem, creds.key_pem)
        return Signed(message, image_list)

    def published_image(self, image_id: str, part: BootPart = "disk") -> Path:
        """The stored disk (or kernel, or initrd) of an image the published list names
        (no caller)."""
        if not self.settings.publish_image_list:
            raise NotFound("this site does not publish its image list")
        now = utcnow()
        with self.db.session() as s:
            image = s.get(Image, image_id)
            if (
                image is None
                or image.visibility != Visibility.public.value
                or certification_standing(image, now).image_class == TrustClass.user
            ):
                raise NotFound(f"no listed image {image_id!r}")
            digest = {
                "disk": image.digest,
                "kernel": image.kernel_digest,
                "initrd": image.initrd_digest,
            }[part]
            if digest is None or (part != "disk" and image.boot_mode != BootMode.kernel.value):
                raise NotFound(f"the listed image {image_id!r} has no {part}")
            return self.blobs.path_of(digest)

    # --- subscriptions ------------------------------------------------------------
    def _out(self, s: Session, sub: ImageListSubscription) -> SubscriptionOut:
        now = utcnow()
        images = s.scalars(select(Image).where(Image.subscription_id == sub.id)).unique().all()
        certified = sum(
            1 for i in images if certification_standing(i, now).state == CertState.valid
        )
        return SubscriptionOut(
            name=sub.name,
            url=sub.url,
            endorser_dn=sub.endorser_dn,
            list_identifier=sub.list_identifier,
            list_expires_at=sub.list_expires_at,
            last_checked_at=sub.last_checked_at,
            last_error=sub.last_error,
            created_by=sub.created_by,
            created_at=sub.created_at,
            images=len(images),
            certified=certified,
        )

    @staticmethod
    def _get(s: Session, name: str) -> ImageListSubscription:
        sub = s.scalar(select(ImageListSubscription).where(ImageListSubscription.name == name))
        if sub is None:
            raise NotFound(
                f"no image-list subscription {name!r}", hint="see them: gridvm image-list list"
            )
        return sub

    def subscribe(self, who: Principal, req: SubscriptionCreate) -> SubscriptionOut:
        who.require_officer()
        validate_name(req.name, what="subscription name")
        if not req.url.startswith(("http://", "https://")):
            raise InvalidInput(f"{req.url!r} is not an http(s) URL")
        try:
            cas = x509.load_pem_x509_certificates(req.ca_pem.encode())
        except ValueError:
            cas = []
        if not cas:
            raise InvalidInput(
                "the CA is not a PEM certificate", hint="give the CA's certificate file (PEM)"
            )
        with self.db.session() as s:
            taken = s.scalar(
                select(ImageListSubscription).where(ImageListSubscription.name == req.name)
            )
            if taken is not None:
                raise Conflict(f"a subscription named {req.name!r} exists already")
            s.add(
                ImageListSubscription(
                    id=new_id("ils"),
                    name=req.name,
                    url=req.url,
                    endorser_dn=req.endorser_dn.strip(),
                    ca_pem=req.ca_pem,
                    created_by=who.name,
                    # Fetched just below: not for the background round.
                    last_checked_at=utcnow(),
                )
            )
        return self.refresh(None, req.name)

    def list_subscriptions(self, who: Principal) -> list[SubscriptionOut]:
        who.require_officer()
        with self.db.session() as s:
            subs = s.scalars(select(ImageListSubscription).order_by(ImageListSubscription.name))
            return [self._out(s, sub) for sub in subs.all()]

    def remove(self, who: Principal, name: str) -> None:
        """Drop a subscription: its images stay, without the list's certification."""
        who.require_officer()
        now = utcnow()
        with self.db.session() as s:
            sub = self._get(s, name)
            for image in s.scalars(select(Image).where(Image.subscription_id == sub.id)).unique():
                revoke_valid(s, image, f"imagelist {name}", "unsubscribed", now, sub.id)
            s.delete(sub)

    def refresh_due(self) -> None:
        """Refresh, in a thread of its own, the subscriptions not checked for a while."""
        if not self._refreshing.acquire(blocking=False):
            return
        try:
            cutoff = utcnow() - timedelta(seconds=self.settings.image_list_refresh_s)
            with self.db.session() as s:
                due = s.scalars(
                    select(ImageListSubscription.name).where(
                        (ImageListSubscription.last_checked_at.is_(None))
                        | (ImageListSubscription.last_checked_at < cutoff)
                    )
                ).all()
        except Exception:
            self._refreshing.release()
            raise
        if not due:
            self._refreshing.release()
            return

        def run() -> None:
            try:
                for name in due:
                    try:
                        self._refresh(name)
                    except Exception:
                        log.exception("refreshing image list %s failed", name)
            finally:
                self._refreshing.release()

        threading.Thread(target=run, name="gridvm-imagelists", daemon=True).start()

    def refresh(self, who: Principal | None, name: str) -> SubscriptionOut:
        """Fetch and apply the list now; its outcome is in the answer's ``last_error``."""
        if who is not None:
            who.require_officer()
        with self.db.session() as s:
            self._get(s, name)
        self._refresh(name)
        with self.db.session() as s:
            return self._out(s, self._get(s, name))

    # --- the refresh itself ---------------------------------------------------------
    def _record(self, name: str, error: str | None) -> None:
        with self.db.session() as s:
            sub = self._get(s, name)
            sub.last_checked_at = utcnow()
            sub.last_error = error
        if error:
            log.warning("image list %s: %s", name, error)

    def _refresh(self, name: str) -> None:
        with self._applying:
            self._refresh_now(name)

    def _refresh_now(self, name: str) -> None:
        with self.db.session() as s:
            sub = self._get(s, name)
            url, ca_pem, dn = sub.url, sub.ca_pem, sub.endorser_dn
            known_id = sub.list_identifier
        try:
            image_list = self._fetch_verified(url, ca_pem, dn, known_id)
        except GridvmError as exc:
            self._record(name, str(exc))
            return
        if image_list.expires <= utcnow():
            self._expire(name, image_list.expires)
            self._record(
                name,
                f"the list expired at {image_list.expires:%Y-%m-%d %H:%M} UTC: nothing taken,"
                " and the certifications it gave have ended",
            )
            return
        errors = self._apply(name, image_list)
        self._record(name, "; ".join(errors) if errors else None)

    def _fetch_verified(
        self, url: str, ca_pem: str, dn: str, known_id: str | None
    ) -> document.ImageList:
        message = _fetch_bytes(url, MAX_LIST_BYTES)
        verified = smime.verify(message, ca_pem)
        if not smime.same_dn(verified.signer_dn, dn):
            raise InvalidInput(
                f"the list is signed by {verified.signer_dn}, not by the endorser {dn}",
                hint="nothing was taken from it",
            )
        image_list = document.parse(verified.content)
        if known_id is not None and image_list.identifier != known_id:
            raise InvalidInput(
                f"the list at this URL is now {image_list.identifier}, not {known_id}",
                hint="subscribe to the new list under another name",
            )
        return image_list

    def _expire(self, name: str, expired_at: datetime) -> None:
        now = utcnow()
        with self.db.session() as s:
            sub = self._get(s, name)
            sub.list_expires_at = expired_at
            certs = s.scalars(
                select(ImageCertification).where(ImageCertification.subscription_id == sub.id)
            ).all()
            for cert in certs:
                if is_valid(cert, now):
                    cert.expires_at = expired_at
            s.flush()
            for image in s.scalars(select(Image).where(Image.subscription_id == sub.id)).unique():
                sync_trust(s, image, now)

    def _apply(self, name: str, image_list: document.ImageList) -> list[str]:
        """Take the list's images; returns the problems with single images."""
        errors: list[str] = []
        with self.db.session() as s:
            sub = self._get(s, name)
            sub_id = sub.id
            held = {
                (i.list_identifier, i.list_sha512)
                for i in s.scalars(select(Image).where(Image.subscription_id == sub_id)).unique()
            }
        for listed in image_list.images:
            if listed.refused is not None:
                errors.append(f"image {listed.title!r} ({listed.identifier}): {listed.refused}")
                continue
            if (listed.identifier, vouched_for(listed)) in held:
                continue
            try:
                self._take(name, sub_id, listed)
            except GridvmError as exc:
                errors.append(f"image {listed.title!r} ({listed.identifier}): {exc}")
        now = utcnow()
        wanted = {(i.identifier, vouched_for(i)) for i in image_list.images if i.refused is None}
        block = self.settings.block_severity
        with self.db.session() as s:
            sub = self._get(s, name)
            sub.list_identifier = image_list.identifier
            sub.list_expires_at = image_list.expires
            for image in s.scalars(select(Image).where(Image.subscription_id == sub_id)).unique():
                if (image.list_identifier, image.list_sha512) in wanted:
                    # The list vouches for it, but not against what this site found in it.
                    refused = local_refusals(s.get(ImageInspection, image.id), block)
                    if refused:
                        revoke_valid(s, image, f"imagelist {name}", refused, now, sub_id)
                        errors.append(f"image {image.name!r} is not certified here: {refused}")
                        continue
                    self._certify_listed(s, image, name, sub_id, image_list.expires, now)
                else:
                    revoke_valid(s, image, f"imagelist {name}", "de-listed", now, sub_id)
        return errors

    @staticmethod
    def _certify_listed(
        s: Session, image: Image, name: str, sub_id: str, expires: datetime, now: datetime
    ) -> None:
        """Make the list's certification of ``image`` last until the list expires; an image
        a local officer revoked stays revoked (this site's decision outranks the list)."""
        if any(
            c.subscription_id == sub_id
            and c.revoked_by is not None
            and not c.revoked_by.startswith("imagelist ")
            for c in image.certifications
        ):
            return
        current = [
            c for c in image.certifications if c.subscription_id == sub_id and is_valid(c, now)
        ]
        if current:
            for cert in current:
                cert.expires_at = expires
        else:
            s.add(
                ImageCertification(
                    id=new_id("crt"),
                    image_id=image.id,
                    source="imagelist",
                    certified_by=f"imagelist {name}",
                    reason=f"listed in the signed image list {name}",
                    certified_at=now,
                    expires_at=expires,
                    subscription_id=sub_id,
                )
            )
        image.trust = TrustClass.certified.value

    def _take(self, name: str, sub_id: str, listed: document.ListedImage) -> None:
        """Download one listed image (and a kernel-boot image's kernel and initrd), check
        each SHA-512 and size against the list, store and register it; nothing of it is
        kept if any part fails."""
        limits = self.config.limits
        if listed.size > limits.max_upload_bytes:
            raise InvalidInput(f"it is larger ({listed.size} bytes) than the site's limit")
        boot = listed.kernel_boot
        staged: list[StagedBlob] = []
        stored: list[str] = []
        try:
            # The kernel and initrd first: small, and checked before they enter the store.
            kernel = self._receive_verified(boot.kernel, "kernel") if boot else None
            if kernel is not None:
                staged.append(kernel)
            initrd = self._receive_verified(boot.initrd, "initrd") if boot and boot.initrd else None
            if initrd is not None:
                staged.append(initrd)
            digest = hashlib.sha512()
            received = 0

            def chunks() -> Iterator[bytes]:
                nonlocal received
                for chunk in _stream(listed.uri, limits.max_upload_bytes):
                    digest.update(chunk)
                    received += len(chunk)
                    yield chunk

            ingested = ingest_image(
                self.blobs,
                chunks(),
                max_bytes=limits.max_upload_bytes,
                max_virtual_size=limits.max_image_virtual_size,
            )
            stored.append(ingested.digest)
            if digest.hexdigest() != listed.sha512 or received != listed.size:
                raise InvalidInput(
                    f"the download ({received} bytes) does not match the list's SHA-512 and"
                    f" size ({listed.size} bytes)",
                    hint="nothing was kept; the publisher's copy or the list is wrong",
                )
            kernel_digest = self.blobs.add_file(kernel.path) if kernel else None
            initrd_digest = self.blobs.add_file(initrd.path) if initrd else None
            stored += [d for d in (kernel_digest, initrd_digest) if d]
            inspected = read_disk(self.blobs.path_of(ingested.digest))
            with self.db.session() as s:
                admin = s.scalar(select(User).where(User.name == ADMIN_NAME))
                if admin is None:
                    raise RuntimeError("no admin user")
                image_name = f"{name}-{_slug(listed.title)}"[:63].rstrip("-._")
                validate_name(image_name, what="image name")
                image = Image(
                    id=new_id("img"),
                    name=image_name,
                    version=next_version(s, admin.id, image_name),
                    source="imagelist",
                    subscription_id=sub_id,
                    list_identifier=listed.identifier,
                    list_sha512=vouched_for(listed),
                    owner_id=admin.id,
                    group_id=None,
                    visibility=Visibility.public.value,
                    trust=TrustClass.user.value,  # certified once the list is applied
                    digest=ingested.digest,
                    format="qcow2",
                    uploaded_format=ingested.format_uploaded,
                    size=ingested.size,
                    virtual_size=ingested.virtual_size,
                    boot_mode=(BootMode.kernel if boot else BootMode.disk).value,
                    kernel_digest=kernel_digest,
                    initrd_digest=initrd_digest,
                    kernel_cmdline=boot.cmdline if boot else None,
                    os=listed.os or None,
                    min_memory_mb=boot.min_memory_mb if boot else 64,
                )
                s.add(image)
                s.flush()
                store_inspection(s, image, inspected, self.vuln_feed)
            log.info("image list %s: took %s (%s)", name, listed.title, listed.identifier)
        except BaseException:
            for blob in staged:
                blob.discard()
            for stored_digest in stored:
                self._drop_unreferenced(stored_digest)
            raise

    def _receive_verified(self, file: document.BootFile, what: str) -> StagedBlob:
        """Download a kernel or initrd into the store's tmp dir, checked against the list
        (its SHA-512 and size); InvalidInput, and nothing kept, when it does not match."""
        limit = self.config.limits.max_upload_bytes
        if file.size > limit:
            raise InvalidInput(f"its {what} is larger ({file.size} bytes) than the site's limit")
        digest = hashlib.sha512()

        def chunks() -> Iterator[bytes]:
            # Never more than the list says: a larger download fails as it comes.
            for chunk in _stream(file.uri, max(file.size, 1)):
                digest.update(chunk)
                yield chunk

        staged = self.blobs.receive(chunks(), max_bytes=max(file.size, 1))
        if digest.hexdigest() != file.sha512 or staged.size != file.size:
            staged.discard()
            raise InvalidInput(
                f"the {what} download ({staged.size} bytes) does not match the list's"
                f" {what} SHA-512 and size ({file.size} bytes)",
                hint="nothing of the image was kept; the publisher's copy or the list is wrong",
            )
        return staged

    def _drop_unreferenced(self, digest: str) -> None:
        with self.db.session() as s:
            used = s.scalar(
                select(Image.id)
                .where(
                    or_(
                        Image.digest == digest,
                        Image.kernel_digest == digest,
                        Image.initrd_digest == digest,
                    )
                )
                .limit(1)
            )
        if used is None and self.blobs.exists(digest):
            self.blobs.delete(digest)


def local_refusals(inspection: ImageInspection | None, block: str) -> str | None:
    """Why this site will not certify a listed image whatever the list says: credentials
    in it, or a vulnerability at or above the block severity (when it was scanned)."""
    reasons = []
    creds = credential_findings(inspection)
    if creds:
        reasons.append(f"it carries credentials: {', '.join(creds)}")
    vulns = blocking_vulns(inspection, block)
    if vulns:
        reasons.append(f"it has vulnerabilities at or above {block}: {', '.join(vulns[:5])}")
    return "; ".join(reasons) or None


def _fetch_bytes(url: str, limit: int) -> bytes:
    data = bytearray()
    for chunk in _stream(url, limit):
        data += chunk
    return bytes(data)


def _stream(url: str, limit: int) -> Iterator[bytes]:
    """The body at ``url``, in chunks; InvalidInput when it cannot be had or is too large."""
    try:
        with httpx.stream("GET", url, timeout=FETCH_TIMEOUT_S, follow_redirects=True) as r:
            if r.status_code != 200:
                raise InvalidInput(f"fetching {url} answered HTTP {r.status_code}")
            total = 0
            for chunk in r.iter_bytes(CHUNK):
                total += len(chunk)
                if total > limit:
                    raise InvalidInput(f"{url} is larger than {limit} bytes")
                yield chunk
    except httpx.HTTPError as exc:
        raise InvalidInput(f"fetching {url} failed: {exc}", hint="try again later") from None
