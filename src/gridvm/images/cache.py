"""The agent's image cache: one directory per image digest, LRU eviction, pins.

Layout under ``root``::

    .lock                  flock held by the one agent using this cache
    .tmp/                  downloads and entries being added or removed
    <hex>/blob             the image or boot file (read-only), sha256 == <hex>
    <hex>/meta.json        size, added, last used
    <hex>/pins/<holder>    one empty file per holder (e.g. a VM id) using it

An entry appears and disappears with one directory rename, so a crash never
leaves a half-made entry. Pins are files so that they survive an agent
restart; a pinned entry is never evicted or deleted.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO

from gridvm.common.errors import Conflict, ImageRejected, InvalidInput, NotFound, ToolFailed
from gridvm.common.units import format_size
from gridvm.images.blobstore import fsync_dir
from gridvm.images.digests import HEX_RE, parse_digest, sha256_file
from gridvm.images.headers import check_qcow2_header

log = logging.getLogger(__name__)

IMAGE_NAME = "blob"
META_NAME = "meta.json"
PINS_DIR = "pins"
_HOLDER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")

Fetch = Callable[[Path], object]  # the return value is ignored


@dataclass(frozen=True)
class CacheEntry:
    digest: str
    path: Path
    size: int
    last_used: float  # seconds since the epoch
    pins: frozenset[str]


@dataclass
class _Entry:
    size: int
    added_ns: int
    last_used_ns: int
    pins: set[str] = field(default_factory=set)


def _check_holder(holder: str) -> None:
    if not isinstance(holder, str) or not _HOLDER_RE.fullmatch(holder):
        raise InvalidInput(
            f"{holder!r} is not a valid pin holder name",
            hint="use 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit "
            "(e.g. a VM id)",
        )


class ImageCache:
    """Images cached on one host. Thread-safe; one agent process per ``root``."""

    def __init__(self, root: Path, limit_bytes: int) -> None:
        if limit_bytes <= 0:
            raise ValueError(f"limit_bytes must be positive, not {limit_bytes}")
        self.root = Path(root).resolve()
        self.limit_bytes = limit_bytes
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock_file = self._take_root_lock()
        self._tmp = self.root / ".tmp"
        self._lock = threading.Lock()
        self._flights: dict[str, Future[None]] = {}
        self._index: dict[str, _Entry] = {}
        self._last_stamp = 0
        try:
            self._reset_tmp()
            self._load()
            with self._lock:
                doomed = self._evict_locked(keep=None)
            self._remove_dirs(doomed)
        except BaseException:
            self.close()
            raise

    # --- process-level exclusivity ----------------------------------------

    def _take_root_lock(self) -> IO[str]:
        lock_path = self.root / ".lock"
        f = lock_path.open("a+")
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            owner = f.read().strip() or "unknown"
            f.close()
            raise Conflict(
                f"image cache {self.root} is already in use by another gridvm agent (pid {owner})",
                hint="run one agent per cache directory: stop the other agent or give this "
                "one its own cache directory",
            ) from None
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        return f

    def close(self) -> None:
        """Release the cache directory (another agent may then open it)."""
        if not self._lock_file.closed:
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)
            self._lock_file.close()

    def __enter__(self) -> ImageCache:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- start-up ---------------------------------------------------------

    def _reset_tmp(self) -> None:
        """Drop downloads and removals a previous agent left half done."""
        if self._tmp.exists():
            shutil.rmtree(self._tmp)
        self._tmp.mkdir(mode=0o700)

    def _load(self) -> None:
        for d in self.root.iterdir():
            if not (HEX_RE.fullmatch(d.name) and d.is_dir()):
                continue
            image = d / IMAGE_NAME
            if not image.is_file():
                log.warning("removing incomplete image cache entry %s", d)
                self._remove_dirs([self._detach(d.name)])
                continue
            size = image.stat().st_size
            added = last_used = image.stat().st_mtime_ns
            with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
                meta = json.loads((d / META_NAME).read_text())
                added, last_used = int(meta["added_ns"]), int(meta["last_used_ns"])
            pins_dir = d / PINS_DIR
            pins = (
                {p.name for p in pins_dir.iterdir() if _HOLDER_RE.fullmatch(p.name)}
                if pins_dir.is_dir()
                else set()
            )
            self._index[d.name] = _Entry(size, added, last_used, pins)
            self._last_stamp = max(self._last_stamp, last_used)

    # --- lookups ----------------------------------------------------------

    def _entry_dir(self, hexd: str) -> Path:
        return self.root / hexd

    def path_if_cached(self, digest: str) -> Path | None:
        """The cached image's path, or None (does not count as a use)."""
        hexd = parse_digest(digest)
        with self._lock:
            return self._entry_dir(hexd) / IMAGE_NAME if hexd in self._index else None

    def entries(self) -> list[CacheEntry]:
        """All cached images, least recently used first."""
        with self._lock:
            items = sorted(self._index.items(), key=lambda kv: kv[1].last_used_ns)
            return [
                CacheEntry(
                    digest=f"sha256:{hexd}",
                    path=self._entry_dir(hexd) / IMAGE_NAME,
                    size=e.size,
                    last_used=e.last_used_ns / 1e9,
                    pins=frozenset(e.pins),
                )
                for hexd, e in items
            ]

    def digests(self) -> list[str]:
        return [e.digest for e in self.entries()]

    def total_bytes(self) -> int:
        with self._lock:
            return sum(e.size for e in self._index.values())

    def pins(self, digest: str) -> set[str]:
        """Holders pinning ``digest`` (empty if none or not cached)."""
        hexd = parse_digest(digest)
        with self._lock:
            entry = self._index.get(hexd)
            return set(entry.pins) if entry else set()

    # --- ensure -----------------------------------------------------------

    def ensure(
        self, digest: str, fetch: Fetch, *, pin_as: str | None = None, qcow2: bool = True
    ) -> Path:
        """Return the path of the cached image, downloading it first if needed.

        ``fetch(tmp_path)`` must write the image to ``tmp_path``. It is called
        once however many threads ask for the same digest at the same time;
        the others wait and get the same file (or the same error). The file
        must hash to ``digest`` and, with ``qcow2`` (disk images, not kernels
        or initrds), be a self-contained qcow2, else it is deleted and
        ImageRejected raised. ``pin_as`` pins the entry for that
        holder before anything can evict it (use it when starting a VM).
        """
        hexd = parse_digest(digest)
        if pin_as is not None:
            _check_holder(pin_as)
        while True:
            with self._lock:
                if hexd in self._index:
                    self._touch_locked(hexd)
                    if pin_as is not None:
                        self._pin_locked(hexd, pin_as)
                    return self._entry_dir(hexd) / IMAGE_NAME
                flight = self._flights.get(hexd)
                leader = flight is None
                if flight is None:
                    flight = Future()
                    self._flights[hexd] = flight
            if not leader:
                flight.result()  # raises the leader's error; on success, loop to use the entry
                continue
            try:
                path = self._fetch_and_add(hexd, fetch, pin_as, qcow2)
            except BaseException as exc:
                flight.set_exception(exc)
                raise
            else:
                flight.set_result(None)
                return path
            finally:
                with self._lock:
                    del self._flights[hexd]

    def _fetch_and_add(self, hexd: str, fetch: Fetch, pin_as: str | None, qcow2: bool) -> Path:
        digest = f"sha256:{hexd}"
        staging = self._tmp / f"{hexd}.{secrets.token_hex(4)}.new"
        staging.mkdir(mode=0o700)
        try:
            image = staging / IMAGE_NAME
            fetch(image)
            self._verify(image, digest, qcow2)
            image.chmod(0o444)
            (staging / PINS_DIR).mkdir()
            size = image.stat().st_size
            with self._lock:
                stamp = self._stamp()
                self._write_meta(staging, _Entry(size, stamp, stamp))
                staging.rename(self._entry_dir(hexd))
                fsync_dir(self.root)
                self._index[hexd] = _Entry(size, stamp, stamp)
                if pin_as is not None:
                    self._pin_locked(hexd, pin_as)
                doomed = self._evict_locked(keep=hexd)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        self._remove_dirs(doomed)
        return self._entry_dir(hexd) / IMAGE_NAME

    @staticmethod
    def _verify(image: Path, digest: str, qcow2: bool) -> None:
        if not image.is_file() or image.is_symlink():
            raise ToolFailed(
                f"downloading image {digest} produced no file",
                hint="check the agent's connection to the server and retry",
            )
        got = sha256_file(image)
        if f"sha256:{got}" != digest:
            raise ImageRejected(
                f"digest mismatch: the downloaded image should be {digest} but is sha256:{got}",
                hint="the download was corrupted or the server's copy is damaged; retry, "
                "and if it fails again ask an administrator to check the image store",
            )
        if not qcow2:
            return
        # Defence in depth: the server stores only self-contained qcow2 images.
        check_qcow2_header(image, name=f"downloaded image {digest}", max_virtual_size=2**63)

    # --- pins -------------------------------------------------------------

    def pin(self, digest: str, holder: str) -> None:
        """Mark ``digest`` as used by ``holder``: it will not be evicted or deleted."""
        hexd = parse_digest(digest)
        _check_holder(holder)
        with self._lock:
            if hexd not in self._index:
                raise NotFound(
                    f"image {digest} is not in this host's cache",
                    hint="call ensure() (with pin_as=) to fetch and pin it in one step",
                )
            self._pin_locked(hexd, holder)

    def unpin(self, digest: str, holder: str) -> None:
        """Drop ``holder``'s pin. No error if there is no such pin or entry."""
        hexd = parse_digest(digest)
        _check_holder(holder)
        with self._lock:
            entry = self._index.get(hexd)
            if entry is None or holder not in entry.pins:
                return
            pins_dir = self._entry_dir(hexd) / PINS_DIR
            (pins_dir / holder).unlink(missing_ok=True)
            fsync_dir(pins_dir)
            entry.pins.discard(holder)

    def _pin_locked(self, hexd: str, holder: str) -> None:
        entry = self._index[hexd]
        if holder in entry.pins:
            return
        pins_dir = self._entry_dir(hexd) / PINS_DIR
        pins_dir.mkdir(exist_ok=True)
        (pins_dir / holder).touch()
        fsync_dir(pins_dir)
        entry.pins.add(holder)

    # --- removal ----------------------------------------------------------

    def delete(self, digest: str, *, missing_ok: bool = False) -> None:
        """Remove a cached image. Conflict if it is pinned."""
        hexd = parse_digest(digest)
        with self._lock:
            entry = self._index.get(hexd)
            if entry is None:
                if missing_ok:
                    return
                raise NotFound(
                    f"image {digest} is not in this host's cache", hint="nothing to delete"
                )
            if entry.pins:
                raise Conflict(
                    f"image {digest} is in use by {', '.join(sorted(entry.pins))}",
                    hint="stop or delete those VMs first",
                )
            del self._index[hexd]
            doomed = self._detach(hexd)
        self._remove_dirs([doomed])

    def evict(self) -> list[str]:
        """Evict least-recently-used unpinned images until within the limit."""
        with self._lock:
            before = set(self._index)
            doomed = self._evict_locked(keep=None)
            gone = sorted(before - set(self._index))
        self._remove_dirs(doomed)
        return [f"sha256:{h}" for h in gone]

    def _evict_locked(self, keep: str | None) -> list[Path]:
        total = sum(e.size for e in self._index.values())
        doomed: list[Path] = []
        candidates = sorted(
            (h for h, e in self._index.items() if not e.pins and h != keep),
            key=lambda h: self._index[h].last_used_ns,
        )
        for hexd in candidates:
            if total <= self.limit_bytes:
                break
            total -= self._index.pop(hexd).size
            doomed.append(self._detach(hexd))
            log.info("evicted image sha256:%s from the cache", hexd)
        if total > self.limit_bytes:
            log.warning(
                "image cache %s holds %s, above its limit of %s: the rest is pinned or just added",
                self.root,
                format_size(total),
                format_size(self.limit_bytes),
            )
        return doomed

    def _detach(self, hexd: str) -> Path:
        """Atomically take an entry out of the cache; the caller removes the returned dir."""
        target = self._tmp / f"{hexd}.{secrets.token_hex(4)}.old"
        self._entry_dir(hexd).rename(target)
        return target

    @staticmethod
    def _remove_dirs(dirs: list[Path]) -> None:
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)

    # --- metadata ---------------------------------------------------------

    def _stamp(self) -> int:
        """A strictly increasing wall-clock time in ns (keeps LRU order exact)."""
        self._last_stamp = max(time.time_ns(), self._last_stamp + 1)
        return self._last_stamp

    def _touch_locked(self, hexd: str) -> None:
        entry = self._index[hexd]
        entry.last_used_ns = self._stamp()
        self._write_meta(self._entry_dir(hexd), entry)

    @staticmethod
    def _write_meta(entry_dir: Path, entry: _Entry) -> None:
        tmp = entry_dir / f".{META_NAME}.tmp"
        tmp.write_text(
            json.dumps(
                {
                    "size": entry.size,
                    "added_ns": entry.added_ns,
                    "last_used_ns": entry.last_used_ns,
                }
            )
        )
        tmp.replace(entry_dir / META_NAME)
