from __future__ import annotations

import hashlib
import stat
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gridvm.common.errors import Conflict, ImageRejected, InvalidInput, NotFound
from gridvm.images.cache import ImageCache
from tests.images.conftest import qemu_img


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def blobs(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    """Five small, distinct, self-contained qcow2 images of equal file size."""
    d = tmp_path_factory.mktemp("blobs")
    out = []
    for i in range(5):
        p = d / f"{i}.qcow2"
        qemu_img("create", "-q", "-f", "qcow2", str(p), f"{i + 1}M")
        out.append(p.read_bytes())
    assert len({len(b) for b in out}) == 1 and len({digest_of(b) for b in out}) == 5
    return out


class Fetcher:
    """A fetch callback serving known blobs, counting calls."""

    def __init__(self, blobs: list[bytes], delay: float = 0.0) -> None:
        self.by_digest = {digest_of(b): b for b in blobs}
        self.delay = delay
        self.calls: list[str] = []
        self._lock = threading.Lock()

    def for_digest(self, digest: str) -> Callable[[Path], None]:
        def fetch(tmp: Path) -> None:
            with self._lock:
                self.calls.append(digest)
            time.sleep(self.delay)
            tmp.write_bytes(self.by_digest[digest])

        return fetch


@pytest.fixture
def cache(tmp_path: Path, blobs: list[bytes]) -> Iterator[ImageCache]:
    c = ImageCache(tmp_path / "cache", limit_bytes=10 * len(blobs[0]))
    yield c
    c.close()


def test_ensure_fetches_once_and_then_reuses(cache: ImageCache, blobs: list[bytes]) -> None:
    fetcher = Fetcher(blobs)
    d = digest_of(blobs[0])
    path = cache.ensure(d, fetcher.for_digest(d))
    assert path == cache.root / d.removeprefix("sha256:") / "blob"
    assert path.read_bytes() == blobs[0]
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert cache.ensure(d, fetcher.for_digest(d)) == path
    assert fetcher.calls == [d]
    assert cache.digests() == [d]
    assert cache.total_bytes() == len(blobs[0])
    assert cache.path_if_cached(d) == path
    assert cache.path_if_cached(digest_of(blobs[1])) is None


def test_concurrent_ensures_fetch_once(cache: ImageCache, blobs: list[bytes]) -> None:
    fetcher = Fetcher(blobs, delay=0.2)
    d = digest_of(blobs[0])
    barrier = threading.Barrier(8)
    results: list[Path] = []
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        barrier.wait()
        try:
            results.append(cache.ensure(d, fetcher.for_digest(d), pin_as=f"vm-{i}"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert fetcher.calls == [d]
    assert len(set(results)) == 1 and len(results) == 8
    assert cache.pins(d) == {f"vm-{i}" for i in range(8)}


def test_concurrent_ensures_share_one_failure(cache: ImageCache, blobs: list[bytes]) -> None:
    calls = []

    def corrupt(tmp: Path) -> None:
        calls.append(1)
        time.sleep(0.2)
        tmp.write_bytes(b"not what was asked for")

    d = digest_of(blobs[0])
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def worker() -> None:
        barrier.wait()
        try:
            cache.ensure(d, corrupt)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert len(errors) == 4 and all(isinstance(e, ImageRejected) for e in errors)


def test_digest_mismatch_leaves_nothing(cache: ImageCache, blobs: list[bytes]) -> None:
    d = digest_of(blobs[0])
    with pytest.raises(ImageRejected) as err:
        cache.ensure(d, lambda tmp: tmp.write_bytes(blobs[1]))
    assert "digest mismatch" in err.value.message and d in err.value.message
    assert err.value.hint and "retry" in err.value.hint
    assert cache.entries() == []
    assert sorted(p.name for p in cache.root.iterdir()) == [".lock", ".tmp"]
    assert list((cache.root / ".tmp").iterdir()) == []


def test_a_failing_fetch_leaves_nothing(cache: ImageCache, blobs: list[bytes]) -> None:
    def broken(tmp: Path) -> None:
        tmp.write_bytes(b"half")
        raise ConnectionError("server went away")

    with pytest.raises(ConnectionError):
        cache.ensure(digest_of(blobs[0]), broken)
    assert cache.entries() == []
    assert list((cache.root / ".tmp").iterdir()) == []


def test_a_downloaded_image_with_a_backing_file_is_refused(
    cache: ImageCache, tmp_path: Path
) -> None:
    evil = tmp_path / "evil.qcow2"
    qemu_img("create", "-q", "-u", "-f", "qcow2", "-F", "raw", "-b", "/etc/shadow", str(evil), "1M")
    data = evil.read_bytes()
    with pytest.raises(ImageRejected, match="backing file"):
        cache.ensure(digest_of(data), lambda tmp: tmp.write_bytes(data))
    assert cache.entries() == []


def test_malformed_digest_is_refused(cache: ImageCache) -> None:
    with pytest.raises(InvalidInput, match="not an image digest"):
        cache.ensure("sha256:../../etc", lambda tmp: None)


def test_lru_eviction_order(tmp_path: Path, blobs: list[bytes]) -> None:
    size = len(blobs[0])
    fetcher = Fetcher(blobs)
    a, b, c, d = (digest_of(x) for x in blobs[:4])
    with ImageCache(tmp_path / "cache", limit_bytes=3 * size) as cache:
        for x in (a, b, c):
            cache.ensure(x, fetcher.for_digest(x))
        cache.ensure(a, fetcher.for_digest(a))  # a is now the most recently used
        assert cache.digests() == [b, c, a]  # least recently used first
        cache.ensure(d, fetcher.for_digest(d))
        assert sorted(cache.digests()) == sorted([c, a, d])
        assert cache.total_bytes() == 3 * size
        assert not (cache.root / b.removeprefix("sha256:")).exists()
        assert fetcher.calls == [a, b, c, d]


def test_pinned_images_are_never_evicted(tmp_path: Path, blobs: list[bytes]) -> None:
    size = len(blobs[0])
    fetcher = Fetcher(blobs)
    a, b, c, d, e = (digest_of(x) for x in blobs)
    with ImageCache(tmp_path / "cache", limit_bytes=2 * size) as cache:
        cache.ensure(a, fetcher.for_digest(a))
        cache.pin(a, "vm-1")
        cache.ensure(b, fetcher.for_digest(b))
        cache.ensure(c, fetcher.for_digest(c))  # a is LRU but pinned: b goes
        assert sorted(cache.digests()) == sorted([a, c])
        cache.pin(c, "vm-2")
        cache.ensure(d, fetcher.for_digest(d))  # nothing evictable: over the limit for now
        assert sorted(cache.digests()) == sorted([a, c, d])
        cache.ensure(e, fetcher.for_digest(e))  # d is evictable now, the new one is kept
        assert sorted(cache.digests()) == sorted([a, c, e])
        assert cache.pins(a) == {"vm-1"}


def test_pinned_images_cannot_be_deleted(cache: ImageCache, blobs: list[bytes]) -> None:
    d = digest_of(blobs[0])
    cache.ensure(d, Fetcher(blobs).for_digest(d), pin_as="vm-7")
    with pytest.raises(Conflict) as err:
        cache.delete(d)
    assert "vm-7" in err.value.message and err.value.hint
    cache.unpin(d, "vm-7")
    cache.unpin(d, "vm-7")  # idempotent
    cache.delete(d)
    assert cache.entries() == []
    with pytest.raises(NotFound):
        cache.delete(d)
    cache.delete(d, missing_ok=True)


def test_pins_and_usage_survive_a_restart(tmp_path: Path, blobs: list[bytes]) -> None:
    fetcher = Fetcher(blobs)
    a, b = digest_of(blobs[0]), digest_of(blobs[1])
    root = tmp_path / "cache"
    with ImageCache(root, limit_bytes=10 * len(blobs[0])) as cache:
        cache.ensure(a, fetcher.for_digest(a), pin_as="vm-1")
        cache.ensure(b, fetcher.for_digest(b))
        cache.pin(a, "vm-2")
        cache.ensure(a, fetcher.for_digest(a))
        before = cache.entries()
    (root / ".tmp" / "half-download").write_bytes(b"x")  # as if killed mid-download
    with ImageCache(root, limit_bytes=10 * len(blobs[0])) as again:
        assert again.pins(a) == {"vm-1", "vm-2"}
        assert again.entries() == before
        assert list((root / ".tmp").iterdir()) == []
        again.ensure(a, fetcher.for_digest(a))
    assert fetcher.calls == [a, b]


def test_pin_needs_a_cached_image_and_a_safe_holder(cache: ImageCache, blobs: list[bytes]) -> None:
    d = digest_of(blobs[0])
    with pytest.raises(NotFound, match="not in this host's cache"):
        cache.pin(d, "vm-1")
    cache.ensure(d, Fetcher(blobs).for_digest(d))
    for bad in ["", "../x", "a/b", ".hidden", "x" * 200, "vm 1"]:
        with pytest.raises(InvalidInput, match="pin holder"):
            cache.pin(d, bad)
    assert cache.pins(d) == set()
    assert list((cache.root / d.removeprefix("sha256:") / "pins").iterdir()) == []


def test_a_second_cache_on_the_same_root_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    first = ImageCache(root, limit_bytes=1)
    with pytest.raises(Conflict) as err:
        ImageCache(root, limit_bytes=1)
    assert "already in use by another gridvm agent" in err.value.message
    assert err.value.hint and "one agent per cache directory" in err.value.hint
    first.close()
    ImageCache(root, limit_bytes=1).close()
