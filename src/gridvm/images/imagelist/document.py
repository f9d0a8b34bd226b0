"""The HEPiX image-list JSON document: build it, and read one back with checks.

The form is the one vmcatcher, atrope and cloudkeeper read: one object
``{"hv:imagelist": {...}}`` with Dublin Core (``dc:``) and HEPiX (``hv:``,
``sl:``) keys, the endorser's X.509 identity, and one ``{"hv:image": {...}}``
per image with its SHA-512, size and download URI.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gridvm.common.errors import InvalidInput

TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
SHA512_RE = re.compile(r"[0-9a-f]{128}")
LIST_KEYS = (
    "dc:identifier",
    "dc:date:created",
    "dc:date:expires",
    "dc:title",
    "hv:endorser",
    "hv:images",
    "hv:version",
    "hv:uri",
)
IMAGE_KEYS = ("dc:identifier", "dc:title", "sl:checksum:sha512", "hv:size", "hv:uri")


@dataclass(frozen=True)
class Endorser:
    dn: str  # OpenSSL one-line form: /C=DE/O=Example/CN=Endorser
    ca: str
    creator: str = ""
    email: str = ""


@dataclass(frozen=True)
class ListedImage:
    identifier: str
    title: str
    sha512: str
    size: int
    uri: str
    version: str = "1"
    description: str = ""
    format: str = "qcow2"
    os: str = ""
    os_version: str = ""
    arch: str = "x86_64"


@dataclass(frozen=True)
class ImageList:
    identifier: str
    title: str
    created: datetime
    expires: datetime
    version: str
    uri: str
    endorser: Endorser
    description: str = ""
    source: str = ""
    images: tuple[ListedImage, ...] = field(default_factory=tuple)


def _time(when: datetime) -> str:
    return when.astimezone(UTC).strftime(TIME_FORMAT)


def to_document(image_list: ImageList) -> dict[str, Any]:
    """The list as its JSON object."""
    e = image_list.endorser
    return {
        "hv:imagelist": {
            "dc:identifier": image_list.identifier,
            "dc:date:created": _time(image_list.created),
            "dc:date:expires": _time(image_list.expires),
            "dc:title": image_list.title,
            "dc:description": image_list.description,
            "dc:source": image_list.source,
            "hv:version": image_list.version,
            "hv:uri": image_list.uri,
            "hv:endorser": {
                "hv:x509": {
                    "dc:creator": e.creator,
                    "hv:ca": e.ca,
                    "hv:dn": e.dn,
                    "hv:email": e.email,
                }
            },
            "hv:images": [
                {
                    "hv:image": {
                        "dc:identifier": i.identifier,
                        "dc:title": i.title,
                        "dc:description": i.description,
                        "sl:checksum:sha512": i.sha512,
                        "hv:size": i.size,
                        "hv:uri": i.uri,
                        "hv:version": i.version,
                        "hv:format": i.format,
                        "sl:os": i.os,
                        "sl:osversion": i.os_version,
                        "sl:arch": i.arch,
                    }
                }
                for i in image_list.images
            ],
        }
    }


def to_json(image_list: ImageList) -> bytes:
    return json.dumps(to_document(image_list), indent=2, sort_keys=True).encode() + b"\n"


def _bad(what: str) -> InvalidInput:
    return InvalidInput(
        f"not a usable HEPiX image list: {what}",
        hint="check the list's URL; its publisher must fix the list",
    )


def _parse_time(value: object, key: str) -> datetime:
    if not isinstance(value, str):
        raise _bad(f"{key} is not a date")
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _bad(f"{key} {value!r} is not an ISO date") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _text(obj: dict[str, Any], key: str, where: str) -> str:
    value = obj.get(key, "")
    if not isinstance(value, (str, int)):
        raise _bad(f"{where}{key} is not text")
    return str(value)


def _image(entry: object, number: int) -> ListedImage:
    if not isinstance(entry, dict) or not isinstance(entry.get("hv:image"), dict):
        raise _bad(f"image {number} is not an {{'hv:image': ...}} object")
    obj: dict[str, Any] = entry["hv:image"]
    missing = [k for k in IMAGE_KEYS if k not in obj]
    if missing:
        raise _bad(f"image {number} lacks {', '.join(missing)}")
    where = f"image {number}: "
    sha512 = _text(obj, "sl:checksum:sha512", where).lower()
    if not SHA512_RE.fullmatch(sha512):
        raise _bad(f"image {number} has no valid sl:checksum:sha512")
    size = obj["hv:size"]
    if isinstance(size, str) and size.isdigit():
        size = int(size)
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise _bad(f"image {number} has no valid hv:size")
    uri = _text(obj, "hv:uri", where)
    if not uri.startswith(("http://", "https://")):
        raise _bad(f"image {number}'s hv:uri {uri!r} is not an http(s) URL")
    identifier = _text(obj, "dc:identifier", where)
    if not 1 <= len(identifier) <= 64:
        raise _bad(f"image {number}'s dc:identifier must be 1 to 64 characters")
    return ListedImage(
        identifier=identifier,
        title=_text(obj, "dc:title", where),
        sha512=sha512,
        size=size,
        uri=uri,
        version=_text(obj, "hv:version", where) or "1",
        description=_text(obj, "dc:description", where),
        format=_text(obj, "hv:format", where) or "qcow2",
        os=_text(obj, "sl:os", where),
        os_version=_text(obj, "sl:osversion", where),
        arch=_text(obj, "sl:arch", where),
    )


def parse(content: bytes) -> ImageList:
    """Read a list's JSON (the signed content), checking every field gridvm relies on."""
    try:
        doc = json.loads(content)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _bad(f"its content is not JSON ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("hv:imagelist"), dict):
        raise _bad("there is no 'hv:imagelist' object")
    body: dict[str, Any] = doc["hv:imagelist"]
    missing = [k for k in LIST_KEYS if k not in body]
    if missing:
        raise _bad(f"it lacks {', '.join(missing)}")
    x509 = body["hv:endorser"].get("hv:x509") if isinstance(body["hv:endorser"], dict) else None
    if not isinstance(x509, dict) or not x509.get("hv:dn"):
        raise _bad("it names no endorser (hv:endorser / hv:x509 / hv:dn)")
    images = body["hv:images"]
    if not isinstance(images, list):
        raise _bad("hv:images is not a list")
    parsed = tuple(_image(entry, n) for n, entry in enumerate(images, start=1))
    if len({i.identifier for i in parsed}) != len(parsed):
        raise _bad("two images have the same dc:identifier")
    identifier = _text(body, "dc:identifier", "")
    if not 1 <= len(identifier) <= 64:
        raise _bad("its dc:identifier must be 1 to 64 characters")
    return ImageList(
        identifier=identifier,
        title=_text(body, "dc:title", ""),
        created=_parse_time(body["dc:date:created"], "dc:date:created"),
        expires=_parse_time(body["dc:date:expires"], "dc:date:expires"),
        version=_text(body, "hv:version", ""),
        uri=_text(body, "hv:uri", ""),
        description=_text(body, "dc:description", ""),
        source=_text(body, "dc:source", ""),
        endorser=Endorser(
            dn=str(x509["hv:dn"]),
            ca=str(x509.get("hv:ca", "")),
            creator=str(x509.get("dc:creator", "")),
            email=str(x509.get("hv:email", "")),
        ),
        images=parsed,
    )
