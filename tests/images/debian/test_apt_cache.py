"""The builds' package cache: its mmdebstrap hooks, key, admission, atomic insert, LRU eviction."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest

from gridvm.images.debian import apt_cache
from gridvm.images.debian.apt_cache import (
    AptCache,
    admissible,
    archive_name,
    cache_key,
    cache_use,
    index_hashes,
)
from gridvm.images.debian.mmdebstrap import Hook, HookKind, RootSpec, mmdebstrap_argv

KEY_SPEC = RootSpec(mirror="http://deb.debian.org/debian")
SOURCE = "deb http://apt.example.org/tools bookworm main"


def deb(directory: Path, name: str, size: int = 100, age_s: float = 0.0) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_bytes(b"x" * size)
    if age_s:
        when = path.stat().st_mtime - age_s
        os.utime(path, (when, when))
    return path


def test_argv_with_the_cache_hooks_puts_sync_out_before_every_other_customize_hook() -> None:
    hooks = [
        *apt_cache.cache_hooks(
            Path("/w/gridvm-apt-cache"), Path("/w/apt-in"), Path("/w/apt-out"), Path("/w/lists")
        ),
        Hook(HookKind.customize, sync_in=Path("/w/guest")),
        Hook(HookKind.customize, script=Path("/w/gridvm-recipe")),
    ]
    argv = mmdebstrap_argv(
        KEY_SPEC, Path("/w/root.tar"), hooks=hooks, dpkg_options=[], skip=apt_cache.SKIP
    )
    assert argv[7:14] == [
        "--skip=essential/unlink",
        "--setup-hook=/w/gridvm-apt-cache",
        "--setup-hook=sync-in /w/apt-in /var/cache/apt/archives/",
        "--customize-hook=sync-out /var/cache/apt/archives /w/apt-out",
        "--customize-hook=sync-out /var/lib/apt/lists /w/lists",
        "--customize-hook=sync-in /w/guest /",
        "--customize-hook=/w/gridvm-recipe",
    ]
    customize = [a for a in argv if a.startswith("--customize-hook=")]
    assert customize[0].endswith("sync-out /var/cache/apt/archives /w/apt-out")
    assert customize[1].endswith("sync-out /var/lib/apt/lists /w/lists")


def test_cache_paths_and_skip_steps_must_be_plain() -> None:
    with pytest.raises(Exception, match="absolute and plain"):
        Hook(HookKind.customize, sync_out=Path("/w/a b")).argument()
    with pytest.raises(ValueError, match="not an mmdebstrap step"):
        mmdebstrap_argv(KEY_SPEC, Path("/o.tar"), skip=["essential --foo"])


def test_the_key_separates_sources_mirrors_suites_and_architectures() -> None:
    base = cache_key(KEY_SPEC, "amd64")
    assert cache_key(RootSpec(), "amd64") == base  # same mirror (trailing / or not)
    assert cache_key(RootSpec(extra_sources=(SOURCE,)), "amd64") != base
    signed = (
        "deb [signed-by=/etc/apt/keyrings/other.gpg] http://apt.example.org/tools bookworm main"
    )
    assert cache_key(RootSpec(extra_sources=(signed,)), "amd64") != cache_key(
        RootSpec(extra_sources=(SOURCE,)), "amd64"
    )
    assert cache_key(RootSpec(mirror="http://mirror.example.org/debian"), "amd64") != base
    assert cache_key(RootSpec(suite="trixie"), "amd64") != base
    assert cache_key(KEY_SPEC, "arm64") != base
    # What is installed does not change where apt fetches from: one cache for all those builds.
    assert cache_key(RootSpec(packages=()), "amd64") == base


@pytest.mark.parametrize(
    "name",
    ["../jq_1.6_amd64.deb", "a/jq_1.6_amd64.deb", "jq_1.6_amd64.deb.partial", "lock", ".deb",
     "jq..1_amd64.deb", ".incoming-abc", "-x.deb", "jq 1.deb", ""],
)  # fmt: skip
def test_bad_names_are_not_admitted(name: str) -> None:
    assert not admissible(name)


def test_debian_archive_names_are_admitted() -> None:
    assert admissible("jq_1.6-2.1_amd64.deb")
    assert admissible("libc6_2.36-9+deb12u4_amd64.deb")
    assert admissible("systemd_252.22-1%7edeb12u1_amd64.deb")
    assert admissible("base-files_12.4+deb12u5_amd64.deb")
    assert admissible("tzdata_2024a-0+deb12u1_all.deb")
    assert admissible("perl_5.36.0-7%3a1_amd64.deb")


def test_admit_moves_new_plain_debs_in_and_nothing_else(tmp_path: Path) -> None:
    cache = AptCache(tmp_path / "cache", 10**9)
    key = cache_key(KEY_SPEC, "amd64")
    staging = tmp_path / "out"
    deb(staging, "jq_1.6_amd64.deb", 10)
    deb(staging, "lock", 1)
    (staging / "partial").mkdir()
    deb(staging / "partial", "half_1_amd64.deb", 5)
    (staging / "evil_1_amd64.deb").symlink_to("/etc/passwd")
    assert cache.admit(key, staging) == (1, 0)
    assert sorted(p.name for p in cache.directory(key).iterdir()) == ["jq_1.6_amd64.deb"]
    assert (cache.directory(key) / "jq_1.6_amd64.deb").read_bytes() == b"x" * 10
    # Another set of sources sees none of it.
    other = cache.snapshot(cache_key(RootSpec(extra_sources=(SOURCE,)), "amd64"), tmp_path / "in2")
    assert other == set()


def test_insert_is_atomic_for_a_concurrent_reader(tmp_path: Path) -> None:
    """A reader listing the key's directory while builds insert sees whole files only."""
    cache = AptCache(tmp_path / "cache", 10**10)
    key = cache_key(KEY_SPEC, "amd64")
    size = 4 * 1024 * 1024
    stop = threading.Event()
    seen: list[int] = []

    def read() -> None:
        while not stop.is_set():
            for entry in os.scandir(cache.directory(key)) if cache.directory(key).exists() else []:
                if admissible(entry.name):
                    seen.append(entry.stat().st_size)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for n in range(20):
            staging = tmp_path / f"out{n}"
            deb(staging, f"pkg{n}_1_amd64.deb", size)
            cache.admit(key, staging)
    finally:
        stop.set()
        reader.join()
    assert seen and set(seen) == {size}
    assert not [p for p in cache.directory(key).iterdir() if not admissible(p.name)]


def test_snapshot_and_cache_use_count_cached_and_downloaded(tmp_path: Path) -> None:
    cache = AptCache(tmp_path / "cache", 10**9)
    key = cache_key(KEY_SPEC, "amd64")
    deb(cache.directory(key), "a_1_all.deb", 10)
    deb(cache.directory(key), "b_1_all.deb", 20)
    had = cache.snapshot(key, tmp_path / "in")
    assert had == {"a_1_all.deb", "b_1_all.deb"}
    # Hard links: evicting from the cache does not take the file from a running build.
    (cache.directory(key) / "a_1_all.deb").unlink()
    assert (tmp_path / "in" / "a_1_all.deb").read_bytes() == b"x" * 10
    out = tmp_path / "out"
    deb(out, "a_1_all.deb", 10)
    deb(out, "c_1_all.deb", 3_000_000)
    use = cache_use(had, out)
    assert (use.from_cache, use.downloaded, use.downloaded_bytes) == (1, 1, 3_000_000)
    assert use.log_line() == "gridvm-build: 1 packages from the site cache, 1 downloaded (3.0 MB)"


def test_lru_eviction_down_to_the_limit(tmp_path: Path) -> None:
    cache = AptCache(tmp_path / "cache", 250)
    one, two = cache_key(KEY_SPEC, "amd64"), cache_key(KEY_SPEC, "arm64")
    deb(cache.directory(one), "old_1_all.deb", 100, age_s=300)
    deb(cache.directory(two), "middle_1_all.deb", 100, age_s=200)
    deb(cache.directory(one), "used_1_all.deb", 100, age_s=400)
    deb(cache.directory(one), "new_1_all.deb", 100)
    # A build used "used" just now: it is recent again.
    cache.admit(one, tmp_path / "empty", used=["used_1_all.deb"])
    assert cache.evict() == 2
    usage = cache.usage()
    assert usage.bytes == 200 <= cache.max_bytes
    assert sorted(p.name for p in cache.directory(one).iterdir()) == [
        "new_1_all.deb",
        "used_1_all.deb",
    ]
    assert usage.keys[[k.key for k in usage.keys].index(two)].files == 0
    assert cache.evict() == 0


def test_clear_empties_every_key_and_says_what_went(tmp_path: Path) -> None:
    cache = AptCache(tmp_path / "cache", 10**9)
    deb(cache.directory(cache_key(KEY_SPEC, "amd64")), "a_1_all.deb", 10)
    deb(cache.directory(cache_key(KEY_SPEC, "arm64")), "b_1_all.deb", 20)
    removed = cache.clear()
    assert (removed.files, removed.bytes, len(removed.keys)) == (2, 30, 2)
    assert cache.usage().files == 0


def test_only_files_with_the_hash_of_apts_package_lists_are_admitted(tmp_path: Path) -> None:
    staging = tmp_path / "out"
    good = deb(staging, "jq_1.6-2.1_amd64.deb", 10)
    deb(staging, "libjq1_1.6-2.1_amd64.deb", 12)  # changed after apt verified it
    deb(staging, "perl_1%3a5.36.0-7_amd64.deb", 5)  # an epoch, quoted as apt does
    deb(staging, "stray_1_all.deb", 3)  # in no list
    sha = hashlib.sha256(good.read_bytes()).hexdigest()
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages").write_text(
        f"Package: jq\nVersion: 1.6-2.1\nArchitecture: amd64\nSize: 10\nSHA256: {sha}\n\n"
        f"Package: libjq1\nVersion: 1.6-2.1\nArchitecture: amd64\nSize: 12\nSHA256: {sha}\n\n"
        "Package: perl\nVersion: 1:5.36.0-7\nArchitecture: amd64\nSize: 5\n"
        f"SHA256: {hashlib.sha256(b'xxxxx').hexdigest()}\n"
    )
    (lists / "deb.debian.org_debian_dists_bookworm_InRelease").write_text("Package: stray\n")
    wanted = {p.name for p in staging.iterdir()}
    hashes = index_hashes(lists, wanted)
    assert sorted(hashes) == [
        "jq_1.6-2.1_amd64.deb",
        "libjq1_1.6-2.1_amd64.deb",
        "perl_1%3a5.36.0-7_amd64.deb",
    ]
    cache = AptCache(tmp_path / "cache", 10**9)
    key = cache_key(KEY_SPEC, "amd64")
    assert cache.admit(key, staging, hashes=hashes) == (2, 2)
    assert sorted(p.name for p in cache.directory(key).iterdir()) == [
        "jq_1.6-2.1_amd64.deb",
        "perl_1%3a5.36.0-7_amd64.deb",
    ]


def test_archive_names_quote_the_version_as_apt_does() -> None:
    assert archive_name("jq", "1.6-2.1", "amd64") == "jq_1.6-2.1_amd64.deb"
    assert archive_name("perl", "1:5.36.0-7", "amd64") == "perl_1%3a5.36.0-7_amd64.deb"
