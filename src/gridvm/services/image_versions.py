"""Image names and versions: which image a reference means.

A name has versions 1, 2, ... per owner: storing an image under a name its owner
already uses makes the next version. References:

- an image id: exactly that image;
- ``NAME:N``: version N of NAME;
- ``NAME``: the latest version of NAME (the latest one the caller may see).

Among several owners of one name, the caller's own images come first; otherwise
the name must belong to one owner the caller can see (or to exactly one site
template), else the reference is ambiguous and the id must be used.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gridvm.common.errors import Conflict, InvalidInput, NotFound
from gridvm.schemas.images import TrustClass
from gridvm.services.principal import Principal
from gridvm.store.models import Image

LIST_HINT = "see the images you can use with: gridvm image list"


def parse_ref(ref: str) -> tuple[str, int | None]:
    """``NAME:N`` → (NAME, N); ``NAME`` → (NAME, None). Names never hold a colon."""
    name, colon, version = ref.rpartition(":")
    if not colon:
        return ref, None
    if not version.isdigit() or int(version) < 1 or not name:
        raise InvalidInput(
            f"{ref!r} is not an image reference",
            hint="name an image by its id, NAME (the latest version) or NAME:N (version N)",
        )
    return name, int(version)


def next_version(s: Session, owner_id: str, name: str) -> int:
    """The version a new image of ``owner_id`` called ``name`` gets."""
    latest = s.scalar(
        select(func.max(Image.version)).where(Image.owner_id == owner_id, Image.name == name)
    )
    return int(latest or 0) + 1


def latest_ids(images: Iterable[Image]) -> set[str]:
    """The ids of the highest version of each (owner, name) among ``images``."""
    best: dict[tuple[str, str], Image] = {}
    for image in images:
        key = (image.owner_id, image.name)
        if key not in best or image.version > best[key].version:
            best[key] = image
    return {i.id for i in best.values()}


def find_image(s: Session, who: Principal, ref: str) -> Image:
    """The image ``ref`` names (see the module docstring); NotFound if the caller cannot see it."""
    image = s.get(Image, ref)
    if image is not None and who.can_see_image(image):
        return image
    name, version = parse_ref(ref)
    query = select(Image).where(Image.name == name)
    if version is not None:
        query = query.where(Image.version == version)
    visible = [i for i in s.scalars(query).all() if who.can_see_image(i)]
    by_owner: dict[str, list[Image]] = defaultdict(list)
    for i in visible:
        by_owner[i.owner_id].append(i)
    if who.user_id in by_owner:
        return _newest(by_owner[who.user_id])
    if len(by_owner) == 1:
        return _newest(next(iter(by_owner.values())))
    if len(by_owner) > 1:
        site = [imgs for imgs in by_owner.values() if imgs[0].trust == TrustClass.site]
        if len(site) == 1:
            return _newest(site[0])
        raise Conflict(
            f"{len(by_owner)} owners have images named {name!r}",
            hint="name the image by its id instead",
        )
    if version is not None and _name_visible(s, who, name):
        raise NotFound(
            f"image {name!r} has no version {version}",
            hint=f"see its versions with: gridvm image versions {name}",
        )
    raise NotFound(f"no image {ref!r}", hint=LIST_HINT)


def versions_of(s: Session, who: Principal, image: Image) -> list[Image]:
    """Every version of ``image``'s name and owner that the caller may see, oldest first."""
    rows = s.scalars(
        select(Image)
        .where(Image.owner_id == image.owner_id, Image.name == image.name)
        .order_by(Image.version)
    ).all()
    return [i for i in rows if who.can_see_image(i)]


def _newest(images: list[Image]) -> Image:
    return max(images, key=lambda i: i.version)


def _name_visible(s: Session, who: Principal, name: str) -> bool:
    return any(who.can_see_image(i) for i in s.scalars(select(Image).where(Image.name == name)))
