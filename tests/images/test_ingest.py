from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from gridvm.common.errors import GridvmError, ImageRejected, PayloadTooLarge, ToolFailed
from gridvm.images import ingest as ingest_mod
from gridvm.images.blobstore import BlobStore
from gridvm.images.headers import ImageFormat
from gridvm.images.ingest import ingest_image
from tests.images.conftest import (
    MiB,
    SampleImages,
    qemu_img,
    qemu_img_info,
    same_content,
    vmdk_with_embedded_descriptor,
)

MAX_BYTES = 64 * MiB
MAX_VIRTUAL = 1024 * MiB


@pytest.fixture
def store(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "store")


def upload(path: Path, chunk: int = 256 * 1024) -> Iterator[bytes]:
    with path.open("rb") as f:
        while block := f.read(chunk):
            yield block


def assert_store_empty(store: BlobStore) -> None:
    assert list(store.tmp_dir.iterdir()) == []
    assert list(store.blob_dir.iterdir()) == []


@pytest.mark.parametrize(
    ("kind", "fmt"),
    [
        ("qcow2", "qcow2"),
        ("raw_ext4", "raw"),
        ("vmdk", "vmdk"),
        ("vmdk_stream", "vmdk"),
        ("vdi", "vdi"),
    ],
)
def test_ingests_every_accepted_format_as_qcow2(
    store: BlobStore, samples: SampleImages, kind: str, fmt: ImageFormat
) -> None:
    src: Path = getattr(samples, kind)
    result = ingest_image(store, upload(src), max_bytes=MAX_BYTES, max_virtual_size=MAX_VIRTUAL)
    assert result.format_uploaded == fmt
    assert result.virtual_size == 8 * MiB
    assert result.upload_sha256 == hashlib.sha256(src.read_bytes()).hexdigest()
    stored = store.path_of(result.digest)
    assert result.size == stored.stat().st_size
    assert result.digest == "sha256:" + hashlib.sha256(stored.read_bytes()).hexdigest()
    info = qemu_img_info(stored, "qcow2")
    assert info["format"] == "qcow2" and "backing-filename" not in info
    assert same_content(src, fmt, stored, "qcow2")
    assert list(store.tmp_dir.iterdir()) == []


def test_the_same_upload_twice_is_stored_once(store: BlobStore, samples: SampleImages) -> None:
    a = ingest_image(store, upload(samples.vdi), max_bytes=MAX_BYTES, max_virtual_size=MAX_VIRTUAL)
    b = ingest_image(store, upload(samples.vdi), max_bytes=MAX_BYTES, max_virtual_size=MAX_VIRTUAL)
    assert a == b
    assert list(store.digests()) == [a.digest]


def evil_backing(tmp_path: Path, samples: SampleImages) -> Path:
    p = tmp_path / "overlay.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(samples.qcow2), str(p))
    return p


def evil_shadow(tmp_path: Path, samples: SampleImages) -> Path:
    p = tmp_path / "shadow.qcow2"
    qemu_img("create", "-q", "-u", "-f", "qcow2", "-F", "raw", "-b", "/etc/shadow", str(p), "1M")
    return p


def text_file(tmp_path: Path, samples: SampleImages) -> Path:
    p = tmp_path / "readme.txt"
    p.write_text("this is not a disk\n" * 50)
    return p


def truncated_qcow2(tmp_path: Path, samples: SampleImages) -> Path:
    p = tmp_path / "cut.qcow2"
    p.write_bytes(samples.qcow2.read_bytes()[:1000])
    return p


def vmdk_descriptor(tmp_path: Path, samples: SampleImages) -> Path:
    p = tmp_path / "desc.vmdk"
    p.write_text(
        '# Disk DescriptorFile\nversion=1\ncreateType="monolithicFlat"\n'
        f'RW 2048 FLAT "{samples.secret}" 0\n'
    )
    return p


def vmdk_cve(tmp_path: Path, samples: SampleImages) -> Path:
    return vmdk_with_embedded_descriptor(
        samples.vmdk,
        tmp_path / "cve.vmdk",
        b'# Disk DescriptorFile\nversion=1\ncreateType="monolithicFlat"\nRW 2048 FLAT "'
        + str(samples.secret).encode()
        + b'" 0\n',
    )


def too_big(tmp_path: Path, samples: SampleImages) -> Path:
    p = tmp_path / "big.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", str(p), "2G")
    return p


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (evil_backing, "names a backing file"),
        (evil_shadow, "names a backing file ('/etc/shadow')"),
        (text_file, "the upload is not a disk image"),
        (truncated_qcow2, "the upload is truncated"),
        (vmdk_descriptor, "VMDK descriptor file"),
        (vmdk_cve, "CVE-2022-47951"),
        (too_big, "2 GiB, above the limit of 1 GiB"),
    ],
    ids=["backing", "etc-shadow", "text", "truncated", "vmdk-descriptor", "vmdk-cve", "too-big"],
)
def test_refused_uploads_leave_nothing_behind(
    tmp_path: Path, store: BlobStore, samples: SampleImages, make: object, words: str
) -> None:
    assert callable(make)
    bad: Path = make(tmp_path, samples)
    with pytest.raises(ImageRejected) as err:
        ingest_image(store, upload(bad), max_bytes=MAX_BYTES, max_virtual_size=MAX_VIRTUAL)
    assert words in err.value.message
    assert err.value.hint
    assert str(store.root) not in str(err.value)
    assert_store_empty(store)


def test_empty_upload_leaves_nothing(store: BlobStore) -> None:
    with pytest.raises(ImageRejected, match="empty upload"):
        ingest_image(store, iter([]), max_bytes=MAX_BYTES, max_virtual_size=MAX_VIRTUAL)
    assert_store_empty(store)


def test_oversized_upload_leaves_nothing(store: BlobStore, samples: SampleImages) -> None:
    with pytest.raises(PayloadTooLarge):
        ingest_image(store, upload(samples.raw_ext4), max_bytes=MiB, max_virtual_size=MAX_VIRTUAL)
    assert_store_empty(store)


def test_a_failing_conversion_leaves_nothing(
    store: BlobStore, samples: SampleImages, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_convert(src: Path, fmt: ImageFormat, dst: Path) -> None:
        dst.write_bytes(b"half a qcow2")
        raise ToolFailed("qemu-img convert failed: No space left on device")

    monkeypatch.setattr(ingest_mod, "convert_to_qcow2", broken_convert)
    with pytest.raises(GridvmError, match="No space left"):
        ingest_image(store, upload(samples.vdi), max_bytes=MAX_BYTES, max_virtual_size=MAX_VIRTUAL)
    assert_store_empty(store)
