"""The ``mmdebstrap`` command line for a Debian root file system, built as data.

A pure function of what the root is made of (suite, mirror, variant, packages,
extra apt sources) and the hook scripts to run, so it can be unit-tested and
so nothing a user wrote ever becomes part of a shell command line: hooks are
paths of executable files (mmdebstrap runs an existing executable directly,
with the root directory as its first argument), packages are validated names.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from gridvm.common.errors import InvalidInput

DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_SUITE = "bookworm"

# Debian policy: package names are lower case letters, digits, + - . (at least 2
# characters, starting alphanumeric); versions [epoch:]upstream[-revision].
_PACKAGE_RE = re.compile(r"[a-z0-9][a-z0-9+.-]+")
_VERSION_RE = re.compile(r"([0-9]+:)?[0-9A-Za-z][0-9A-Za-z.+~:-]*")
_SUITE_RE = re.compile(r"[a-z][a-z0-9-]*")
_MIRROR_RE = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._~%/-]*)?")
_VARIANT_RE = re.compile(r"[a-z]+")
# Not in the image: documentation, manual pages and translations (copyright notices stay).
DPKG_EXCLUDES = (
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/locale/*",
    "path-include=/usr/share/locale/locale.alias",
    "path-exclude=/usr/share/info/*",
)


class Mode(StrEnum):
    """How mmdebstrap gets root in the build: a user namespace, or real root."""

    unshare = "unshare"
    root = "root"


class HookKind(StrEnum):
    setup = "setup"
    extract = "extract"
    essential = "essential"
    customize = "customize"


@dataclass(frozen=True)
class Hook:
    """An executable file mmdebstrap runs with the root directory as ``$1``, or, with
    ``sync_in``, mmdebstrap's own copy of that host directory's contents into the root
    (at ``inside``), or, with ``sync_out``, of the root's ``inside`` into that directory."""

    kind: HookKind
    script: Path | None = None
    sync_in: Path | None = None
    sync_out: Path | None = None
    inside: str = "/"

    def argument(self) -> str:
        if self.sync_in is not None:
            inside = _plain_path(Path(self.inside), keep=self.inside)
            return f"--{self.kind.value}-hook=sync-in {_plain_path(self.sync_in)} {inside}"
        if self.sync_out is not None:
            inside = _plain_path(Path(self.inside), keep=self.inside)
            return f"--{self.kind.value}-hook=sync-out {inside} {_plain_path(self.sync_out)}"
        if self.script is None:
            raise ValueError("a hook needs a script or a sync_in directory")
        return f"--{self.kind.value}-hook={_plain_path(self.script)}"


def _plain_path(path: Path, keep: str | None = None) -> str:
    """An absolute path mmdebstrap takes as one word (it would hand others to a shell)."""
    text = str(path) if keep is None else keep
    if not path.is_absolute() or not re.fullmatch(r"[A-Za-z0-9._/+-]+", text):
        raise InvalidInput(f"build path {text!r} must be absolute and plain")
    return text


@dataclass(frozen=True)
class PackageSpec:
    """``name`` or ``name=version``."""

    name: str
    version: str | None = None

    @classmethod
    def parse(cls, text: str) -> PackageSpec:
        name, sep, version = text.strip().partition("=")
        if not _PACKAGE_RE.fullmatch(name):
            raise InvalidInput(
                f"{text!r} is not a Debian package name",
                hint="use lower-case names like 'samtools', or 'samtools=1.16.1-1'",
            )
        if sep and not _VERSION_RE.fullmatch(version):
            raise InvalidInput(
                f"{version!r} is not a Debian version (in {text!r})",
                hint="see the versions with: apt-cache policy " + name,
            )
        return cls(name=name, version=version if sep else None)

    def __str__(self) -> str:
        return self.name if self.version is None else f"{self.name}={self.version}"


def validate_mirror(mirror: str) -> str:
    """A plain http(s) URL of a Debian archive, without credentials or query."""
    mirror = mirror.rstrip("/")
    if not _MIRROR_RE.fullmatch(mirror):
        raise InvalidInput(
            f"{mirror!r} is not a Debian mirror URL",
            hint="use e.g. http://deb.debian.org/debian",
        )
    return mirror


@dataclass(frozen=True)
class RootSpec:
    """What a Debian root is made of."""

    suite: str = DEFAULT_SUITE
    mirror: str = DEFAULT_MIRROR
    variant: str = "minbase"
    components: tuple[str, ...] = ("main",)
    packages: tuple[PackageSpec, ...] = ()
    # Whole one-line apt sources ("deb URL SUITE COMPONENT..."), after the mirror.
    extra_sources: tuple[str, ...] = field(default=())

    def validated(self) -> RootSpec:
        if not _SUITE_RE.fullmatch(self.suite):
            raise InvalidInput(f"{self.suite!r} is not a Debian suite name")
        if not _VARIANT_RE.fullmatch(self.variant):
            raise InvalidInput(f"{self.variant!r} is not an mmdebstrap variant")
        for component in self.components:
            if not _SUITE_RE.fullmatch(component):
                raise InvalidInput(f"{component!r} is not an archive component")
        for source in self.extra_sources:
            validate_source_line(source)
        validate_mirror(self.mirror)
        return self

    def source_lines(self) -> list[str]:
        main = f"deb {validate_mirror(self.mirror)} {self.suite} {' '.join(self.components)}"
        return [main, *self.extra_sources]


def validate_source_line(line: str) -> str:
    """A one-line apt source: ``deb [options] URL SUITE [COMPONENT...]``, one line."""
    parts = line.split()
    if "\n" in line or "\r" in line or len(parts) < 3 or parts[0] != "deb":
        raise InvalidInput(
            f"{line!r} is not a one-line apt source",
            hint="write it as: deb http://HOST/PATH SUITE COMPONENT",
        )
    url = next((part for part in parts[1:] if "://" in part), "")
    if not url.startswith(("http://", "https://")):
        raise InvalidInput(f"the apt source {line!r} has no http(s) URL")
    return line


def mmdebstrap_argv(
    spec: RootSpec,
    output: Path,
    *,
    mode: Mode = Mode.unshare,
    hooks: Sequence[Hook] = (),
    dpkg_options: Sequence[str] = DPKG_EXCLUDES,
    skip: Sequence[str] = (),
) -> list[str]:
    """argv of ``mmdebstrap`` building ``spec`` into ``output`` (a .tar: owners kept)."""
    spec = spec.validated()
    argv = [
        "mmdebstrap",
        f"--mode={mode.value}",
        f"--variant={spec.variant}",
        "--format=tar",
        "--verbose",
        "--aptopt=Acquire::Retries 3",
        "--aptopt=APT::Install-Recommends false",
    ]
    argv += [f"--dpkgopt={option}" for option in dpkg_options]
    for step in skip:
        if not re.fullmatch(r"[a-z]+(/[a-z-]+)*", step):
            raise ValueError(f"{step!r} is not an mmdebstrap step")
        argv.append(f"--skip={step}")
    if spec.packages:
        argv.append("--include=" + ",".join(str(package) for package in spec.packages))
    for hook in hooks:
        argv.append(hook.argument())
    argv += [spec.suite, str(output)]
    argv += spec.source_lines()
    return argv
