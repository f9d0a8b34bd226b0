"""The site's vulnerability feed (OSV, Debian) and the scans of inspected images against it.

The feed is a file path or an http(s) URL configured by the site. It is read whole (up to
``MAX_FEED_BYTES``) and identified by its sha256: when that changes, every inspected image is
scanned again from its stored package list (the disks are not read again). New images are
scanned when they are inspected.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from gridvm.common.errors import InvalidInput
from gridvm.images.osv import FeedError, debian_release, match, parse_feed
from gridvm.schemas.inspection import Severity, worst_severity
from gridvm.store.db import Database
from gridvm.store.models import ImageInspection, utcnow

log = logging.getLogger(__name__)

MAX_FEED_BYTES = 1024**3


@dataclass(frozen=True)
class FeedSnapshot:
    digest: str  # "sha256:<hex>"
    records: list[dict[str, Any]]


class VulnFeed:
    """The feed at ``source``; parsed once per distinct content."""

    def __init__(self, source: str) -> None:
        self.source = source
        self._lock = threading.Lock()
        self._snapshot: FeedSnapshot | None = None

    def _read(self) -> bytes:
        if self.source.startswith(("http://", "https://")):
            with httpx.stream("GET", self.source, timeout=60, follow_redirects=True) as resp:
                resp.raise_for_status()
                chunks: list[bytes] = []
                size = 0
                for chunk in resp.iter_bytes():
                    size += len(chunk)
                    if size > MAX_FEED_BYTES:
                        raise FeedError(f"the feed is larger than {MAX_FEED_BYTES} bytes")
                    chunks.append(chunk)
                return b"".join(chunks)
        path = Path(self.source)
        if path.stat().st_size > MAX_FEED_BYTES:
            raise FeedError(f"the feed is larger than {MAX_FEED_BYTES} bytes")
        return path.read_bytes()

    def latest(self) -> FeedSnapshot:
        """The feed as last read (read now if never): cheap, for scanning one new image."""
        with self._lock:
            if self._snapshot is not None:
                return self._snapshot
        return self.current()

    def current(self) -> FeedSnapshot:
        """The feed as it is now (read again; parsed again only when its content changed)."""
        try:
            data = self._read()
        except (OSError, httpx.HTTPError) as exc:
            raise FeedError(f"cannot read the vulnerability feed {self.source}: {exc}") from exc
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        with self._lock:
            if self._snapshot is not None and self._snapshot.digest == digest:
                return self._snapshot
        snapshot = FeedSnapshot(digest, parse_feed(data))
        with self._lock:
            self._snapshot = snapshot
        log.info(
            "vulnerability feed %s: %d records (%s)", self.source, len(snapshot.records), digest
        )
        return snapshot


def scan(row: ImageInspection, snapshot: FeedSnapshot) -> None:
    """Scan one inspection's stored package list against ``snapshot`` (readable images only)."""
    if row.state != "ok":
        return
    release = debian_release(row.os_id, row.os_version)
    vulns = match(row.packages or [], snapshot.records, release)
    row.vulns = vulns
    row.vuln_feed = snapshot.digest
    row.scanned_at = utcnow()
    worst = worst_severity(v["severity"] for v in vulns)
    row.worst_severity = None if worst is None else worst.value


def rescan_all(db: Database, feed: VulnFeed) -> int:
    """Scan every readable image not yet scanned with the feed's current content."""
    snapshot = feed.current()
    count = 0
    with db.session() as s:
        stale = s.scalars(
            select(ImageInspection).where(
                ImageInspection.state == "ok",
                or_(
                    ImageInspection.vuln_feed.is_(None),
                    ImageInspection.vuln_feed != snapshot.digest,
                ),
            )
        ).all()
        for row in stale:
            scan(row, snapshot)
            count += 1
    if count:
        log.info("scanned %d images against vulnerability feed %s", count, snapshot.digest)
    return count


def image_worst_severity(s: Session, image_id: str) -> Severity | None:
    """The worst severity of the known vulnerabilities of an image (None: none, or not
    scanned: see ``ImageInspection.vuln_feed``)."""
    row = s.get(ImageInspection, image_id)
    if row is None or row.worst_severity is None:
        return None
    return Severity(row.worst_severity)


class FeedWatcher:
    """A daemon thread: every ``interval_s`` it runs ``step`` (rescans when the feed changed)."""

    def __init__(self, step: Callable[[], object], interval_s: float) -> None:
        if interval_s <= 0:
            raise InvalidInput("the vulnerability feed check interval must be positive")
        self._step = step
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="gridvm-vulnfeed", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._step()
            except FeedError as exc:
                log.warning("%s", exc)
            except Exception:
                log.exception("vulnerability feed check failed; trying again")
            self._stop.wait(self._interval)
