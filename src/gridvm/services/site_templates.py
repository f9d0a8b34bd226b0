"""Admins add site templates: an image of theirs (typically built from a recipe) becomes
a public ``site``-class image that anyone may run and build on, and stops being one on
request. The starter templates (``tiny``, ``debian-12-minimal``) come from ``make images``
and are registered at every server start, so they are not made or unmade here."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from gridvm.common.errors import Conflict, InvalidInput
from gridvm.schemas.identity import Role
from gridvm.schemas.images import ImageOut, TrustClass, Visibility
from gridvm.services.certification import sync_trust
from gridvm.services.images import find_image
from gridvm.services.presenters import image_out
from gridvm.services.principal import Principal
from gridvm.store.db import Database
from gridvm.store.models import Image, utcnow

log = logging.getLogger(__name__)

STARTER_SOURCE = "template"


def _admin_image(s: Session, who: Principal, ref: str) -> Image:
    who.require_admin()
    return find_image(s, who, ref)


class SiteTemplates:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, who: Principal, ref: str) -> ImageOut:
        with self.db.session() as s:
            image = _admin_image(s, who, ref)
            if image.trust == TrustClass.site:
                raise Conflict(f"image {image.name!r} is a site template already")
            if image.owner.role != Role.admin:
                raise InvalidInput(
                    f"image {image.name!r} belongs to {image.owner.name}, not to the site",
                    hint="templates are the site's: build or upload the image as an admin, "
                    "then make it a template",
                )
            image.trust = TrustClass.site.value
            image.visibility = Visibility.public.value
            s.flush()
            log.info("image %s:%s made a site template by %s", image.name, image.version, who.name)
            return image_out(image)

    def remove(self, who: Principal, ref: str) -> ImageOut:
        with self.db.session() as s:
            image = _admin_image(s, who, ref)
            if image.trust != TrustClass.site:
                raise Conflict(f"image {image.name!r} is not a site template")
            if image.source == STARTER_SOURCE:
                raise Conflict(
                    f"{image.name!r} is a starter template",
                    hint="starter templates come from 'make images' and return at each "
                    "server start; delete the image instead",
                )
            # Back to what its certifications make it (certified or user); it stays public.
            image.trust = TrustClass.user.value
            sync_trust(s, image, utcnow())
            s.flush()
            log.info("image %s:%s is no longer a site template", image.name, image.version)
            return image_out(image)
