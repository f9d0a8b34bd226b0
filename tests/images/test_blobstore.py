from __future__ import annotations

import hashlib
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gridvm.common.errors import ImageRejected, InvalidInput, NotFound, PayloadTooLarge
from gridvm.images.blobstore import BlobStore
from gridvm.images.digests import parse_digest


@pytest.fixture
def store(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "store")


def tmp_files(store: BlobStore) -> list[str]:
    return sorted(p.name for p in store.tmp_dir.iterdir())


def chunks_of(data: bytes, size: int = 1000) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def test_receive_hashes_and_counts_while_streaming(store: BlobStore) -> None:
    data = os.urandom(10_000)
    staged = store.receive(chunks_of(data), max_bytes=10_000)
    assert staged.sha256 == hashlib.sha256(data).hexdigest()
    assert staged.size == 10_000
    assert staged.path.parent == store.tmp_dir
    assert staged.path.read_bytes() == data
    assert stat.S_IMODE(staged.path.stat().st_mode) == 0o600
    staged.discard()
    assert tmp_files(store) == []


def test_receive_stops_at_the_limit_and_leaves_nothing(store: BlobStore) -> None:
    consumed = []

    def endless() -> Iterator[bytes]:
        while True:
            consumed.append(1)
            yield b"x" * 1000

    with pytest.raises(PayloadTooLarge) as err:
        store.receive(endless(), max_bytes=5_500)
    assert "5.4 KiB" in err.value.message and err.value.hint
    assert len(consumed) == 6  # stopped at once, did not drain the client
    assert tmp_files(store) == []


def test_empty_upload_is_rejected(store: BlobStore) -> None:
    with pytest.raises(ImageRejected, match="empty upload"):
        store.receive(iter([b"", b""]), max_bytes=100)
    assert tmp_files(store) == []


def test_a_broken_upload_stream_leaves_nothing(store: BlobStore) -> None:
    def broken() -> Iterator[bytes]:
        yield b"partial"
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        store.receive(broken(), max_bytes=100)
    assert tmp_files(store) == []


def test_add_file_stores_by_content_and_dedups(store: BlobStore) -> None:
    data = b"image bytes" * 1000
    first = store.make_temp()
    first.write_bytes(data)
    digest = store.add_file(first)
    assert digest == "sha256:" + hashlib.sha256(data).hexdigest()
    path = store.path_of(digest)
    assert path == store.root / "sha256" / parse_digest(digest)
    assert path.read_bytes() == data
    assert not first.exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o440
    inode = path.stat().st_ino

    second = store.make_temp()
    second.write_bytes(data)
    assert store.add_file(second) == digest
    assert not second.exists()
    assert store.path_of(digest).stat().st_ino == inode
    assert list(store.digests()) == [digest]
    assert tmp_files(store) == []


def test_add_file_from_another_directory(store: BlobStore, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.bin"
    outside.write_bytes(b"abc")
    digest = store.add_file(outside)
    assert store.path_of(digest).read_bytes() == b"abc"
    assert not outside.exists()


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "sha256:",
        "sha256:" + "a" * 63,
        "sha256:" + "a" * 65,
        "sha256:" + "A" * 64,
        "sha256:" + "a" * 64 + "\n",
        "sha512:" + "a" * 64,
        "a" * 64,
        "sha256:../../../../etc/passwd",
        "sha256:" + "a" * 62 + "/.",
    ],
)
def test_malformed_digests_never_become_paths(store: BlobStore, bad: str) -> None:
    for call in (store.path_of, store.exists, store.size_of, store.delete):
        with pytest.raises(InvalidInput, match="is not an image digest") as err:
            call(bad)
        assert err.value.hint and "64 lower-case hex" in err.value.hint


def test_absent_blobs(store: BlobStore) -> None:
    digest = "sha256:" + "0" * 64
    assert not store.exists(digest)
    with pytest.raises(NotFound) as err:
        store.path_of(digest)
    assert digest in err.value.message
    with pytest.raises(NotFound):
        store.delete(digest)
    store.delete(digest, missing_ok=True)


def test_delete_size_and_exists(store: BlobStore) -> None:
    f = store.make_temp()
    f.write_bytes(b"12345")
    digest = store.add_file(f)
    assert store.exists(digest)
    assert store.size_of(digest) == 5
    store.delete(digest)
    assert not store.exists(digest)


def test_open_range(store: BlobStore) -> None:
    data = bytes(range(256)) * 40
    f = store.make_temp()
    f.write_bytes(data)
    digest = store.add_file(f)
    assert b"".join(store.open_range(digest)) == data
    assert b"".join(store.open_range(digest, 100, 2000)) == data[100:2000]
    assert b"".join(store.open_range(digest, 0, 0)) == b""
    parts = list(store.open_range(digest, 0, 2500, chunk_size=1000))
    assert [len(p) for p in parts] == [1000, 1000, 500]
    assert b"".join(store.open_range(digest, len(data) - 3)) == data[-3:]
    for start, end in [(-1, 10), (10, 5), (0, len(data) + 1)]:
        with pytest.raises(InvalidInput, match="byte range"):
            store.open_range(digest, start, end)
    with pytest.raises(NotFound):
        store.open_range("sha256:" + "1" * 64)


def test_purge_tmp_removes_only_old_leftovers(store: BlobStore) -> None:
    old = store.make_temp()
    new = store.make_temp()
    past = time.time() - 3 * 24 * 3600
    os.utime(old, (past, past))
    assert store.purge_tmp() == 1
    assert not old.exists() and new.exists()
