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
