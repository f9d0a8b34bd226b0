"""The Debian packages the image is made of: resolve, download (cached), extract.

Package versions and checksums come from the local apt package lists
(``apt-cache show``), not from downloading: that lets the build decide whether
the image is up to date without touching the network, and pins each download to
the exact version and SHA-256 the decision was based on.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from gridvm.common.errors import ToolFailed

from .tools import progress, run

KERNEL_METAPACKAGE = "linux-image-cloud-amd64"
BUSYBOX_PACKAGE = "busybox-static"

# A versioned kernel package, as named in the metapackage's Depends field.
_VERSIONED_KERNEL = re.compile(r"^linux-image-\d[\w.+-]*$")
_EXACT_VERSION = re.compile(r"^\(\s*=\s*(?P<version>[^)\s]+)\s*\)$")


class DownloadFailed(ToolFailed):
    """A pinned .deb could not be downloaded: the package lists may be out of date."""


@dataclass(frozen=True)
class DebPackage:
    """One .deb as described by the package lists."""

    name: str
    version: str
    architecture: str
    sha256: str
    depends: str

    @property
    def file_name(self) -> str:
        """The name ``apt-get download`` gives the file (epoch colon escaped)."""
        version = self.version.replace(":", "%3a")
        return f"{self.name}_{version}_{self.architecture}.deb"

    def identity(self) -> str:
        """What the build's input hash records about this package."""
        return f"{self.name} {self.version} {self.architecture} {self.sha256}"


def parse_stanzas(text: str) -> list[dict[str, str]]:
    """The records of ``apt-cache show`` output, continuation lines folded in."""
    stanzas: list[dict[str, str]] = []
    fields: dict[str, str] = {}
    last_key = ""
    for line in [*text.splitlines(), ""]:
        if not line.strip():
            if fields:
                stanzas.append(fields)
            fields, last_key = {}, ""
        elif line[0].isspace() and last_key:
            fields[last_key] += "\n" + line.strip()
        else:
            key, _, value = line.partition(":")
            last_key = key.strip()
            fields[last_key] = value.strip()
    return stanzas


def _package(fields: dict[str, str]) -> DebPackage | None:
    """The package a record describes, or None if it cannot be downloaded.

    An installed package shows a status record without SHA256 when the
    package lists lack it: for us that is the same as "not in the lists".
    """
    if not {"Package", "Version", "SHA256"} <= fields.keys():
        return None
    return DebPackage(
        name=fields["Package"],
        version=fields["Version"],
        architecture=fields.get("Architecture", "amd64"),
        sha256=fields["SHA256"],
        depends=fields.get("Depends", ""),
    )


def _show(specs: list[str]) -> list[DebPackage] | None:
    """Package-list records for ``specs`` (``name`` or ``name=version``), in order."""
    try:
        output = run(["apt-cache", "show", "--no-all-versions", *specs], timeout=120)
    except ToolFailed:
        return None
    by_name: dict[str, DebPackage] = {}
    for fields in parse_stanzas(output):
        package = _package(fields)
        if package is not None:
            by_name.setdefault(package.name, package)
    names = [spec.partition("=")[0] for spec in specs]
    if not all(name in by_name for name in names):
        return None
    return [by_name[name] for name in names]


def update_package_lists() -> None:
    """``apt-get update``: only when the lists lack a package or point to a missing file."""
    progress("running apt-get update")
    run(["apt-get", "update"], timeout=600)


def resolve(specs: list[str]) -> list[DebPackage]:
    """Look packages up, running ``apt-get update`` once if the lists lack them.

    All packages are looked up in one apt-cache run, since each run rebuilds
    apt's cache when it is not kept on disk (about 0.6 s).
    """
    found = _show(specs)
    if found is None:
        progress(f"{' '.join(specs)}: not all in the apt package lists")
        update_package_lists()
        found = _show(specs)
    if found is None:
        raise ToolFailed(
            f"packages {' '.join(specs)} are not all available from apt",
            hint="check /etc/apt/sources.list for the Debian bookworm main archive",
        )
    return found


def versioned_kernel_spec(metapackage: DebPackage) -> str:
    """``name=version`` of the real kernel package the metapackage depends on."""
    for dependency in metapackage.depends.split(","):
        first_alternative = dependency.split("|")[0].strip()
        name, _, constraint = first_alternative.partition(" ")
        if not _VERSIONED_KERNEL.match(name):
            continue
        exact = _EXACT_VERSION.match(constraint.strip())
        return f"{name}={exact['version']}" if exact else name
    raise ToolFailed(
        f"{metapackage.name} {metapackage.version} depends on no linux-image package",
        hint=f"Depends is {metapackage.depends!r}",
    )


def resolve_inputs() -> list[DebPackage]:
    """The kernel metapackage, the kernel it depends on, and busybox, in that order."""
    metapackage, busybox = resolve([KERNEL_METAPACKAGE, BUSYBOX_PACKAGE])
    (kernel,) = resolve([versioned_kernel_spec(metapackage)])
    return [metapackage, kernel, busybox]


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _apt_get_download(package: DebPackage, into: Path) -> Path:
    """Download exactly ``package`` into the empty directory ``into``."""
    args = ["apt-get", "download"]
    if os.geteuid() == 0:
        # As root apt drops to the _apt user, who cannot write into our directory.
        args += ["-o", "APT::Sandbox::User=root"]
    args.append(f"{package.name}={package.version}")
    try:
        run(args, cwd=into, timeout=600)
    except ToolFailed as exc:
        raise DownloadFailed(exc.message, hint="run apt-get update") from exc
    downloaded = sorted(into.glob("*.deb"))
    if len(downloaded) != 1:
        raise DownloadFailed(f"apt-get download {package.name} left {len(downloaded)} .deb files")
    return downloaded[0]


def fetch(package: DebPackage, cache_dir: Path) -> Path:
    """The package's .deb in ``cache_dir``, downloaded only if not already there."""
    cached = cache_dir / package.file_name
    if cached.is_file() and sha256_of(cached) == package.sha256:
        return cached
    progress(f"downloading {package.name} {package.version}")
    cache_dir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".download-", dir=cache_dir))
    try:
        downloaded = _apt_get_download(package, scratch)
        actual = sha256_of(downloaded)
        if actual != package.sha256:
            raise DownloadFailed(
                f"{downloaded.name} has SHA-256 {actual}, the package lists say {package.sha256}",
                hint="run apt-get update and build again",
            )
        downloaded.replace(cached)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return cached


def extract(deb: Path, dest: Path) -> Path:
    """Unpack a .deb's files (not its scripts) under ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    run(["dpkg-deb", "-x", deb, dest], timeout=300)
    return dest
