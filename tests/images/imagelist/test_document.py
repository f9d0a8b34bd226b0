"""The HEPiX image-list document: what is written reads back; what is wrong is named."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from gridvm.common.errors import InvalidInput
from gridvm.images.imagelist import document

IMAGE = document.ListedImage(
    identifier="8a2b5c36-2f0c-5f6e-9d1e-0d4c1a3b2f11",
    title="analysis",
    sha512="ab" * 64,
    size=1234,
    uri="https://site.example/api/v1/public/image-list/images/img_1",
    version="2",
    os="debian",
    os_version="12",
)
LIST = document.ImageList(
    identifier="0b8f6f9e-4d6e-5d0a-8a43-3f9a2b7c1d00",
    title="gridvm images of site",
    created=datetime(2026, 11, 1, 12, 0, tzinfo=UTC),
    expires=datetime(2026, 12, 1, 12, 0, tzinfo=UTC),
    version="20261101120000",
    uri="https://site.example/api/v1/public/image-list",
    endorser=document.Endorser(dn="/O=Site/CN=Endorser", ca="/O=Site/CN=Site CA"),
    images=(IMAGE,),
)


def test_written_in_the_hepix_form_and_read_back() -> None:
    doc = document.to_document(LIST)["hv:imagelist"]
    assert doc["dc:date:expires"] == "2026-12-01T12:00:00Z"
    assert doc["hv:endorser"]["hv:x509"]["hv:dn"] == "/O=Site/CN=Endorser"
    image = doc["hv:images"][0]["hv:image"]
    assert (image["sl:checksum:sha512"], image["hv:size"], image["hv:format"]) == (
        "ab" * 64,
        1234,
        "qcow2",
    )
    assert (image["sl:os"], image["sl:osversion"], image["sl:arch"]) == ("debian", "12", "x86_64")
    assert document.parse(document.to_json(LIST)) == LIST


def _broken(change: Any) -> bytes:
    doc = json.loads(document.to_json(LIST))
    change(doc["hv:imagelist"])
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("dc:date:expires"), "it lacks dc:date:expires"),
        (lambda d: d.update({"dc:date:expires": "soon"}), "is not an ISO date"),
        (lambda d: d["hv:endorser"]["hv:x509"].pop("hv:dn"), "names no endorser"),
        (lambda d: d.update({"hv:images": {}}), "hv:images is not a list"),
        (
            lambda d: d["hv:images"][0]["hv:image"].update({"sl:checksum:sha512": "xyz"}),
            "image 1 has no valid sl:checksum:sha512",
        ),
        (
            lambda d: d["hv:images"][0]["hv:image"].update({"hv:uri": "file:///etc/shadow"}),
            "is not an http(s) URL",
        ),
        (lambda d: d["hv:images"][0]["hv:image"].update({"hv:size": -1}), "no valid hv:size"),
        (lambda d: d["hv:images"].append(d["hv:images"][0]), "the same dc:identifier"),
    ],
)
def test_what_is_wrong_is_named(change: Any, message: str) -> None:
    with pytest.raises(InvalidInput, match="not a usable HEPiX image list") as caught:
        document.parse(_broken(change))
    assert message in caught.value.message


def test_not_json_or_not_a_list() -> None:
    with pytest.raises(InvalidInput, match="not JSON"):
        document.parse(b"\xff\xfe")
    with pytest.raises(InvalidInput, match="no 'hv:imagelist' object"):
        document.parse(b'{"imagelist": {}}')


KERNEL_IMAGE = document.ListedImage(
    identifier="5f0e2d1c-7b6a-5a49-8c3d-2e1f0a9b8c7d",
    title="tiny",
    sha512="cd" * 64,
    size=4321,
    uri="https://site.example/api/v1/public/image-list/images/img_2",
    kernel_boot=document.KernelBoot(
        kernel=document.BootFile(
            uri="https://site.example/api/v1/public/image-list/images/img_2/kernel",
            sha512="ef" * 64,
            size=14186432,
        ),
        initrd=document.BootFile(
            uri="https://site.example/api/v1/public/image-list/images/img_2/initrd",
            sha512="01" * 64,
            size=1105347,
        ),
        cmdline="console=ttyS0 root=/dev/vda rw quiet",
        min_memory_mb=128,
    ),
)
KERNEL_LIST = document.ImageList(**{**LIST.__dict__, "images": (IMAGE, KERNEL_IMAGE)})


def test_a_kernel_boot_image_carries_the_gridvm_fields_in_its_entry() -> None:
    entries = document.to_document(KERNEL_LIST)["hv:imagelist"]["hv:images"]
    disk, kernel = entries[0]["hv:image"], entries[1]["hv:image"]
    assert not [k for k in disk if k.startswith("gridvm:")]  # a disk image: plain HEPiX
    assert kernel["gridvm:boot"] == "kernel"
    assert (kernel["gridvm:kernel_sha512"], kernel["gridvm:kernel_size"]) == ("ef" * 64, 14186432)
    assert kernel["gridvm:initrd_uri"].endswith("/images/img_2/initrd")
    assert kernel["gridvm:kernel_cmdline"] == "console=ttyS0 root=/dev/vda rw quiet"
    assert kernel["gridvm:min_memory_mb"] == 128
    back = document.parse(document.to_json(KERNEL_LIST))
    assert back == KERNEL_LIST
    assert back.images[1].refused is None


def test_a_kernel_boot_image_without_initrd_reads_back() -> None:
    boot = KERNEL_IMAGE.kernel_boot
    assert boot is not None
    alone = document.ListedImage(
        **{
            **KERNEL_IMAGE.__dict__,
            "kernel_boot": document.KernelBoot(**{**boot.__dict__, "initrd": None}),
        }
    )
    image_list = document.ImageList(**{**LIST.__dict__, "images": (alone,)})
    entry = document.to_document(image_list)["hv:imagelist"]["hv:images"][0]["hv:image"]
    assert "gridvm:initrd_uri" not in entry
    assert document.parse(document.to_json(image_list)) == image_list


def _kernel_entry_changed(change: Any) -> document.ListedImage:
    doc = json.loads(document.to_json(KERNEL_LIST))
    change(doc["hv:imagelist"]["hv:images"][1]["hv:image"])
    parsed = document.parse(json.dumps(doc).encode())
    assert parsed.images[0] == IMAGE  # the other entries stay usable
    return parsed.images[1]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda e: e.pop("gridvm:initrd_sha512"), "it lacks gridvm:initrd_sha512"),
        (lambda e: e.pop("gridvm:kernel_uri"), "it lacks gridvm:kernel_uri"),
        (lambda e: e.pop("gridvm:kernel_cmdline"), "it lacks gridvm:kernel_cmdline"),
        (
            lambda e: e.pop("gridvm:boot"),
            "it has gridvm:initrd_sha512, gridvm:initrd_size, gridvm:initrd_uri,"
            " gridvm:kernel_cmdline, gridvm:kernel_sha512, gridvm:kernel_size,"
            " gridvm:kernel_uri but no gridvm:boot 'kernel'",
        ),
        (lambda e: e.update({"gridvm:boot": "uefi"}), "'uefi' is not a boot mode this site"),
        (lambda e: e.update({"gridvm:kernel_sha512": "xyz"}), "gridvm:kernel_sha512 is not a"),
        (lambda e: e.update({"gridvm:initrd_size": -5}), "gridvm:initrd_size is not a size"),
        (
            lambda e: e.update({"gridvm:kernel_uri": "file:///boot/vmlinuz"}),
            "gridvm:kernel_uri 'file:///boot/vmlinuz' is not an http(s) URL",
        ),
        (
            lambda e: e.update({"gridvm:kernel_cmdline": "quiet\ninit=/bin/sh"}),
            "gridvm:kernel_cmdline holds the character '\\n'",
        ),
        (
            lambda e: e.update({"gridvm:kernel_cmdline": "quiet \x1b[2J"}),
            "gridvm:kernel_cmdline holds the character '\\x1b'",
        ),
        (
            lambda e: e.update({"gridvm:kernel_cmdline": "a" * 1025}),
            "gridvm:kernel_cmdline is longer than 1024 characters",
        ),
        (lambda e: e.update({"gridvm:kernel_cmdline": 7}), "gridvm:kernel_cmdline is not text"),
        (lambda e: e.update({"gridvm:min_memory_mb": 0}), "gridvm:min_memory_mb is not a number"),
    ],
)
def test_an_unusable_kernel_entry_is_refused_with_its_reason(change: Any, message: str) -> None:
    refused = _kernel_entry_changed(change)
    assert refused.refused is not None
    assert refused.refused.startswith("its gridvm boot fields are not usable: ")
    assert message in refused.refused
