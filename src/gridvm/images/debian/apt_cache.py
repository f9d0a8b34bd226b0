"""The server's package cache for Debian builds: .debs apt fetched once, given to later builds.

Layout: ``<root>/<key>/<name>.deb``, where ``key`` (:func:`cache_key`) is the sha256 of
everything that decides which files apt could fetch: mirror, suite, components,
architecture and the build's extra apt sources (their options, e.g. ``signed-by``,
included). Builds with different sources never share a directory, so a user's own
repository cannot put a ``foo_1.0_amd64.deb`` where a build from the site mirror alone
(e.g. a certified-by-construction one) reads.

How a build uses it (mmdebstrap's documented caching, see ``man mmdebstrap``):

- a setup hook makes ``/var/cache/apt/archives/`` and ``sync-in`` copies a snapshot of
  the key's directory (hard links, so eviction or a concurrent insert cannot change what
  the build reads) there; apt then downloads only what is missing;
- ``--skip=essential/unlink`` keeps the essential packages' .debs in the root;
- the FIRST customize hook ``sync-out``\\ s ``/var/cache/apt/archives`` into a staging
  directory: after apt installed (and verified) the packages, before any recipe file or
  ``run`` command touches the root;
- after the build succeeded, each new .deb with a plain name is moved into the key's
  directory by an atomic rename; a failed build adds nothing. Then least-recently-used
  files are evicted until the cache fits its size limit (a file's mtime is its last use).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .mmdebstrap import Hook, HookKind, RootSpec

ARCHIVES = "/var/cache/apt/archives"
LISTS = "/var/lib/apt/lists"
# mmdebstrap removes the essential packages' .debs after installing them unless told not to.
SKIP = ("essential/unlink",)
SETUP_SCRIPT = """\
#!/bin/sh
# gridvm package cache: the directory the cached .debs are copied into.
set -eu
mkdir -p "$1/var/cache/apt/archives/partial"
"""
# A Debian archive file name: NAME_VERSION_ARCH.deb (the epoch's ':' written as %3a).
_DEB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9+.~%_-]*\.deb")
_KEY = re.compile(r"[0-9a-f]{64}")
_INCOMING = ".incoming-"


def cache_key(spec: RootSpec, architecture: str) -> str:
    """sha256 (hex) of what decides which .debs apt could fetch for ``spec``."""
    spec = spec.validated()
    identity = {
        "mirror": spec.mirror.rstrip("/"),
        "suite": spec.suite,
        "components": list(spec.components),
        "architecture": architecture,
        "extra_sources": [" ".join(line.split()) for line in spec.extra_sources],
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def admissible(name: str) -> bool:
    """A plain ``*.deb`` file name: no directory part, no ``..``, no odd characters."""
    return bool(_DEB_NAME.fullmatch(name)) and ".." not in name and not name.startswith(_INCOMING)


def write_setup_script(path: Path) -> Path:
    path.write_text(SETUP_SCRIPT)
    path.chmod(0o755)
    return path


def cache_hooks(setup_script: Path, snapshot: Path, staging: Path, lists: Path) -> list[Hook]:
    """The hooks giving a build ``snapshot``'s .debs and copying its archives to
    ``staging`` and apt's package lists to ``lists``; the customize hooks must come before
    every other customize hook."""
    return [
        Hook(HookKind.setup, script=setup_script),
        Hook(HookKind.setup, sync_in=snapshot, inside=ARCHIVES + "/"),
        Hook(HookKind.customize, sync_out=staging, inside=ARCHIVES),
        Hook(HookKind.customize, sync_out=lists, inside=LISTS),
    ]


def archive_name(package: str, version: str, architecture: str) -> str:
    """The file name apt gives a downloaded package (``:`` and ``_`` of the version quoted)."""
    quoted = version.replace("%", "%25").replace(":", "%3a").replace("_", "%5f")
    return f"{package}_{quoted}_{architecture}.deb"


def index_hashes(lists: Path, wanted: Iterable[str]) -> dict[str, tuple[int, str]]:
    """Size and sha256 of the ``wanted`` archive files, as apt's package lists (``lists``,
    the build's ``/var/lib/apt/lists``, from the sources' signed Release files) give them."""
    want = set(wanted)
    found: dict[str, tuple[int, str]] = {}
    for path in sorted(lists.glob("*_Packages")) if want else []:
        fields: dict[str, str] = {}
        with path.open(encoding="utf-8", errors="replace") as index:
            for line in index:
                if line == "\n":
                    _take(fields, want, found)
                    fields = {}
                elif line.startswith(_FIELDS):
                    name, _, value = line.partition(":")
                    fields[name] = value.strip()
        _take(fields, want, found)
    return found


_FIELDS = ("Package:", "Version:", "Architecture:", "Size:", "SHA256:")


def _take(fields: dict[str, str], want: set[str], found: dict[str, tuple[int, str]]) -> None:
    try:
        name = archive_name(fields["Package"], fields["Version"], fields["Architecture"])
        if name in want and name not in found:
            found[name] = (int(fields["Size"]), fields["SHA256"].lower())
    except (KeyError, ValueError):
        return


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _debs(directory: Path) -> dict[str, os.stat_result]:
    """The admissible regular files (not links) directly in ``directory``."""
    found: dict[str, os.stat_result] = {}
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return found
    for entry in entries:
        if admissible(entry.name) and entry.is_file(follow_symlinks=False):
            try:
                found[entry.name] = entry.stat(follow_symlinks=False)
            except FileNotFoundError:  # evicted meanwhile
                continue
    return found


@dataclass(frozen=True)
class CacheUse:
    """What one build took from the cache and what apt downloaded."""

    from_cache: int
    downloaded: int
    downloaded_bytes: int

    def log_line(self) -> str:
        mb = self.downloaded_bytes / 1e6
        return (
            f"gridvm-build: {self.from_cache} packages from the site cache, "
            f"{self.downloaded} downloaded ({mb:.1f} MB)"
        )


def cache_use(had: Iterable[str], staging: Path) -> CacheUse:
    """Compare the build's archives (``staging``) with what the cache gave it (``had``)."""
    given = set(had)
    debs = _debs(staging)
    new = {name: st for name, st in debs.items() if name not in given}
    return CacheUse(
        from_cache=len(debs) - len(new),
        downloaded=len(new),
        downloaded_bytes=sum(st.st_size for st in new.values()),
    )


@dataclass(frozen=True)
class KeyUsage:
    key: str
    files: int
    bytes: int
    last_used: float | None


@dataclass(frozen=True)
class CacheUsage:
    directory: Path
    max_bytes: int
    files: int
    bytes: int
    keys: tuple[KeyUsage, ...]


class AptCache:
    """The cache under ``root`` (``<data>/build-cache/apt``), at most ``max_bytes``."""

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self._lock = threading.Lock()

    def directory(self, key: str) -> Path:
        if not _KEY.fullmatch(key):
            raise ValueError(f"{key!r} is not a cache key")
        return self.root / key

    def _keys(self) -> list[str]:
        try:
            return sorted(p.name for p in self.root.iterdir() if _KEY.fullmatch(p.name))
        except FileNotFoundError:
            return []

    def snapshot(self, key: str, dest: Path) -> set[str]:
        """Hard links (copies across file systems) of the key's .debs in ``dest``; their names."""
        dest.mkdir(parents=True, exist_ok=True)
        source = self.directory(key)
        taken: set[str] = set()
        for name in _debs(source):
            try:
                os.link(source / name, dest / name)
            except FileNotFoundError:  # evicted meanwhile: apt downloads it
                continue
            except OSError:
                try:
                    shutil.copyfile(source / name, dest / name)
                except FileNotFoundError:
                    continue
            taken.add(name)
        return taken

    def admit(
        self,
        key: str,
        staging: Path,
        used: Iterable[str] = (),
        hashes: Mapping[str, tuple[int, str]] | None = None,
    ) -> tuple[int, int]:
        """Move ``staging``'s new .debs into the key's directory (atomic renames) and mark
        the ``used`` ones as used now. With ``hashes`` (:func:`index_hashes`), a file whose
        size and sha256 are not those is refused. (files added, files refused)."""
        target = self.directory(key)
        target.mkdir(parents=True, exist_ok=True)
        for name in used:
            if admissible(name):
                with contextlib.suppress(FileNotFoundError):
                    os.utime(target / name)
        added = refused = 0
        for name, st in _debs(staging).items():
            final = target / name
            if final.exists():
                continue
            if hashes is not None and (
                hashes.get(name, (-1, ""))[0] != st.st_size
                or hashes[name][1] != _sha256(staging / name)
            ):
                refused += 1
                continue
            incoming = target / f"{_INCOMING}{uuid.uuid4().hex}"
            try:
                (staging / name).rename(incoming)
            except OSError:  # another file system: copy next to the target first
                shutil.copyfile(staging / name, incoming)
            incoming.chmod(0o644)
            os.utime(incoming)
            incoming.replace(final)
            added += 1
        return added, refused

    def evict(self) -> int:
        """Remove the least recently used files until the cache fits; how many went."""
        with self._lock:
            files = [
                (st.st_mtime, st.st_size, self.root / key / name)
                for key in self._keys()
                for name, st in _debs(self.root / key).items()
            ]
            total = sum(size for _, size, _ in files)
            removed = 0
            for _, size, path in sorted(files):
                if total <= self.max_bytes:
                    break
                path.unlink(missing_ok=True)
                total -= size
                removed += 1
            return removed

    def usage(self) -> CacheUsage:
        keys = []
        for key in self._keys():
            debs = _debs(self.root / key)
            keys.append(
                KeyUsage(
                    key=key,
                    files=len(debs),
                    bytes=sum(st.st_size for st in debs.values()),
                    last_used=max((st.st_mtime for st in debs.values()), default=None),
                )
            )
        return CacheUsage(
            directory=self.root,
            max_bytes=self.max_bytes,
            files=sum(k.files for k in keys),
            bytes=sum(k.bytes for k in keys),
            keys=tuple(keys),
        )

    def clear(self) -> CacheUsage:
        """Empty the cache (builds running now keep their snapshots); what was removed."""
        with self._lock:
            before = self.usage()
            for used in before.keys:
                for name in _debs(self.root / used.key):
                    (self.root / used.key / name).unlink(missing_ok=True)
            return before


def host_architecture() -> str:
    """The Debian architecture mmdebstrap builds for by default (this host's)."""
    done = subprocess.run(
        ["dpkg", "--print-architecture"], capture_output=True, text=True, check=True, timeout=30
    )
    return done.stdout.strip()


@dataclass
class CachedBuild:
    """One build's use of the cache: its snapshot, hooks, staging directories, and the
    admission of what it downloaded once it has succeeded."""

    cache: AptCache
    key: str
    work: Path
    had: set[str]

    @classmethod
    def prepare(cls, cache: AptCache, spec: RootSpec, architecture: str, work: Path) -> CachedBuild:
        key = cache_key(spec, architecture)
        had = cache.snapshot(key, work / "apt-in")
        (work / "apt-out").mkdir()
        (work / "apt-lists").mkdir()
        write_setup_script(work / "gridvm-apt-cache")
        return cls(cache=cache, key=key, work=work, had=had)

    def hooks(self) -> list[Hook]:
        return cache_hooks(
            self.work / "gridvm-apt-cache",
            self.work / "apt-in",
            self.work / "apt-out",
            self.work / "apt-lists",
        )

    def use(self) -> CacheUse:
        return cache_use(self.had, self.work / "apt-out")

    def fill(self, log: Callable[[str], None]) -> None:
        """Admit the new .debs whose hash apt's (signed) package lists give, mark the used
        ones recent, evict down to the limit; a failure only logs (the build stands)."""
        staging = self.work / "apt-out"
        try:
            new = {p.name for p in staging.iterdir()} - self.had
            hashes = index_hashes(self.work / "apt-lists", new)
            added, refused = self.cache.admit(self.key, staging, used=self.had, hashes=hashes)
            evicted = self.cache.evict()
        except OSError as exc:
            log(f"W: the package cache was not updated: {exc}")
            return
        log(f"I: package cache: {added} added, {evicted} evicted")
        if refused:
            log(f"W: package cache: {refused} files not matching apt's package lists refused")
