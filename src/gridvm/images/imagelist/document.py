"""The HEPiX image-list JSON document: build it, and read one back with checks.

The form is the one vmcatcher, atrope and cloudkeeper read: one object
``{"hv:imagelist": {...}}`` with Dublin Core (``dc:``) and HEPiX (``hv:``,
``sl:``) keys, the endorser's X.509 identity, and one ``{"hv:image": {...}}``
per image with its SHA-512, size and download URI.

gridvm extension: an image booted with a kernel and initrd kept beside its disk
carries, in its ``hv:image`` object (so the signature covers them),
``gridvm:boot`` ``"kernel"``; ``gridvm:kernel_uri``, ``gridvm:kernel_sha512``,
``gridvm:kernel_size``; ``gridvm:initrd_uri``, ``gridvm:initrd_sha512``,
``gridvm:initrd_size`` (all three or none); ``gridvm:kernel_cmdline``; and
``gridvm:min_memory_mb``. Other HEPiX readers ignore keys they do not know. An
entry whose extension is incomplete or malformed is read with ``refused`` set:
the rest of the list stays usable, that entry is not taken.
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
GRIDVM = "gridvm:"
BOOT_KEY = "gridvm:boot"
KERNEL_KEYS = ("gridvm:kernel_uri", "gridvm:kernel_sha512", "gridvm:kernel_size")
INITRD_KEYS = ("gridvm:initrd_uri", "gridvm:initrd_sha512", "gridvm:initrd_size")
CMDLINE_KEY = "gridvm:kernel_cmdline"
MEMORY_KEY = "gridvm:min_memory_mb"
MAX_CMDLINE = 1024  # well under Linux's x86 COMMAND_LINE_SIZE (2048)
MAX_MIN_MEMORY_MB = 1024 * 1024


@dataclass(frozen=True)
class Endorser:
    dn: str  # OpenSSL one-line form: /C=DE/O=Example/CN=Endorser
    ca: str
    creator: str = ""
    email: str = ""


@dataclass(frozen=True)
class BootFile:
    """A kernel or initrd of a kernel-boot image: where it is, and what it must be."""

    uri: str
    sha512: str
    size: int


@dataclass(frozen=True)
class KernelBoot:
    """How a kernel-boot image starts (the gridvm extension of its ``hv:image``)."""

    kernel: BootFile
    initrd: BootFile | None
    cmdline: str
    min_memory_mb: int = 64


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
    # None: the image boots from its disk.
    kernel_boot: KernelBoot | None = None
    # Read from a list: why this site cannot take the entry (not written out).
    refused: str | None = None


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
            "hv:images": [{"hv:image": _image_object(i)} for i in image_list.images],
        }
    }


def _image_object(i: ListedImage) -> dict[str, Any]:
    obj: dict[str, Any] = {
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
    boot = i.kernel_boot
    if boot is not None:
        obj[BOOT_KEY] = "kernel"
        files = [(KERNEL_KEYS, boot.kernel)] + ([(INITRD_KEYS, boot.initrd)] if boot.initrd else [])
        for (uri_key, sha_key, size_key), f in files:
            obj.update({uri_key: f.uri, sha_key: f.sha512, size_key: f.size})
        obj[CMDLINE_KEY] = boot.cmdline
        obj[MEMORY_KEY] = boot.min_memory_mb
    return obj


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


def _size(value: object) -> int | None:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        return None
    return value


def check_cmdline(cmdline: object) -> str:
    """A kernel command line from another site: bounded, printable ASCII, one line.
    Raises ValueError saying what is wrong."""
    if not isinstance(cmdline, str):
        raise ValueError("is not text")
    if len(cmdline) > MAX_CMDLINE:
        raise ValueError(f"is longer than {MAX_CMDLINE} characters")
    bad = next((c for c in cmdline if not " " <= c <= "~"), None)
    if bad is not None:
        raise ValueError(f"holds the character {bad!r} (only printable ASCII on one line)")
    return cmdline


def _boot_file(obj: dict[str, Any], keys: tuple[str, str, str]) -> BootFile:
    uri_key, sha_key, size_key = keys
    uri, sha512, size = obj[uri_key], obj[sha_key], _size(obj[size_key])
    if not isinstance(uri, str) or not uri.startswith(("http://", "https://")):
        raise ValueError(f"{uri_key} {uri!r} is not an http(s) URL")
    if not isinstance(sha512, str) or not SHA512_RE.fullmatch(sha512.lower()):
        raise ValueError(f"{sha_key} is not a SHA-512")
    if size is None:
        raise ValueError(f"{size_key} is not a size in bytes")
    return BootFile(uri=uri, sha512=sha512.lower(), size=size)


def _kernel_boot(obj: dict[str, Any]) -> KernelBoot | None:
    """The entry's gridvm boot extension (None: it boots from its disk); ValueError
    saying what is missing or wrong."""
    present = {k for k in obj if isinstance(k, str) and k.startswith(GRIDVM)}
    boot = obj.get(BOOT_KEY, "disk")
    if boot == "disk":
        stray = sorted(present & {*KERNEL_KEYS, *INITRD_KEYS, CMDLINE_KEY})
        if stray:
            raise ValueError(f"it has {', '.join(stray)} but no {BOOT_KEY} 'kernel'")
        return None
    if boot != "kernel":
        raise ValueError(f"{BOOT_KEY} {boot!r} is not a boot mode this site knows (disk, kernel)")
    missing = [k for k in (*KERNEL_KEYS, CMDLINE_KEY) if k not in present]
    has_initrd = [k for k in INITRD_KEYS if k in present]
    if has_initrd and len(has_initrd) < len(INITRD_KEYS):
        missing += [k for k in INITRD_KEYS if k not in present]
    if missing:
        raise ValueError(f"{BOOT_KEY} is 'kernel' but it lacks {', '.join(missing)}")
    try:
        cmdline = check_cmdline(obj[CMDLINE_KEY])
    except ValueError as exc:
        raise ValueError(f"{CMDLINE_KEY} {exc}") from None
    memory = _size(obj.get(MEMORY_KEY, 64))
    if memory is None or not 1 <= memory <= MAX_MIN_MEMORY_MB:
        raise ValueError(f"{MEMORY_KEY} is not a number of MiB (1 to {MAX_MIN_MEMORY_MB})")
    return KernelBoot(
        kernel=_boot_file(obj, KERNEL_KEYS),
        initrd=_boot_file(obj, INITRD_KEYS) if has_initrd else None,
        cmdline=cmdline,
        min_memory_mb=memory,
    )


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
    size = _size(obj["hv:size"])
    if size is None:
        raise _bad(f"image {number} has no valid hv:size")
    uri = _text(obj, "hv:uri", where)
    if not uri.startswith(("http://", "https://")):
        raise _bad(f"image {number}'s hv:uri {uri!r} is not an http(s) URL")
    identifier = _text(obj, "dc:identifier", where)
    if not 1 <= len(identifier) <= 64:
        raise _bad(f"image {number}'s dc:identifier must be 1 to 64 characters")
    kernel_boot: KernelBoot | None = None
    refused: str | None = None
    try:
        kernel_boot = _kernel_boot(obj)
    except ValueError as exc:
        refused = f"its gridvm boot fields are not usable: {exc}"
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
        kernel_boot=kernel_boot,
        refused=refused,
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
