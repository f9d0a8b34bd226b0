"""Image recipes and builds: ``gridvm image build RECIPE.yaml``.

A recipe names a Debian site template, Debian packages (``name`` or
``name=version``), optional extra apt repositories, files to add and shell
commands run as an unprivileged user; the server builds it into a new image.
Unknown keys are refused (the CLI checks a recipe before sending anything).
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum

from pydantic import Field, field_validator, model_validator

from gridvm.schemas.base import Wire
from gridvm.schemas.images import TrustClass

_PACKAGE_RE = re.compile(r"[a-z0-9][a-z0-9+.-]+(=([0-9]+:)?[0-9A-Za-z][0-9A-Za-z.+~:-]*)?")
MAX_FILES_BYTES = 1024 * 1024
MAX_RUN_BYTES = 64 * 1024


class RecipeFile(Wire):
    """A file to put into the image: ``content`` (text), or ``source`` (a local file
    the CLI reads and sends as ``content``), with an octal ``mode``."""

    path: str
    content: str | None = None
    source: str | None = None
    mode: str = "0644"

    @field_validator("path")
    @classmethod
    def _absolute_path(cls, path: str) -> str:
        parts = path.split("/")
        if (
            not path.startswith("/")
            or path.endswith("/")
            or ".." in parts
            or "." in parts[1:]
            or any(c in path for c in "\0\n\r\t")
            or len(path) > 1024
        ):
            raise ValueError(f"{path!r} must be an absolute file path without '..'")
        return path

    @field_validator("mode", mode="before")
    @classmethod
    def _octal_mode(cls, mode: object) -> str:
        text = f"{mode:o}" if isinstance(mode, int) and not isinstance(mode, bool) else str(mode)
        text = text.removeprefix("0o")
        if not re.fullmatch(r"[0-7]{3,4}", text) or int(text, 8) > 0o1777:
            raise ValueError(f"mode {mode!r} must be octal like '0644' or '0755' (no setuid)")
        return f"{int(text, 8):04o}"

    @model_validator(mode="after")
    def _one_source(self) -> RecipeFile:
        if (self.content is None) == (self.source is None):
            raise ValueError(f"{self.path}: give exactly one of 'content' or 'source'")
        return self


class Recipe(Wire):
    """What to build (the YAML file, and the body of POST /builds)."""

    name: str = Field(description="name of the resulting image")
    template: str = Field(description="a Debian site template, e.g. debian-12-minimal")
    description: str | None = None
    packages: list[str] = Field(default_factory=list, max_length=500)
    repositories: list[str] = Field(
        default_factory=list, max_length=20, description="extra one-line apt sources"
    )
    files: list[RecipeFile] = Field(default_factory=list, max_length=200)
    run: list[str] = Field(
        default_factory=list, max_length=200, description="shell commands, unprivileged"
    )

    @field_validator("packages")
    @classmethod
    def _package_names(cls, packages: list[str]) -> list[str]:
        for package in packages:
            if not isinstance(package, str) or not _PACKAGE_RE.fullmatch(package):
                raise ValueError(
                    f"{package!r} is not a Debian package ('name' or 'name=version', "
                    "e.g. 'samtools' or 'samtools=1.16.1-1')"
                )
        return packages

    @field_validator("repositories")
    @classmethod
    def _sources(cls, repositories: list[str]) -> list[str]:
        for line in repositories:
            parts = line.split()
            if "\n" in line or len(parts) < 3 or parts[0] != "deb":
                raise ValueError(
                    f"{line!r} is not a one-line apt source (deb http://HOST/PATH SUITE COMPONENT)"
                )
        return repositories

    @field_validator("run")
    @classmethod
    def _commands(cls, run: list[str]) -> list[str]:
        if sum(len(command.encode()) for command in run) > MAX_RUN_BYTES:
            raise ValueError(f"the run commands are longer than {MAX_RUN_BYTES} bytes")
        if any("\0" in command for command in run):
            raise ValueError("a run command holds a NUL byte")
        return run

    @model_validator(mode="after")
    def _files_size(self) -> Recipe:
        total = sum(len((f.content or "").encode()) for f in self.files)
        if total > MAX_FILES_BYTES:
            raise ValueError(f"the files hold {total} bytes, more than {MAX_FILES_BYTES}")
        return self


class BuildState(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"


class BuildOut(Wire):
    id: str
    name: str
    owner: str
    template: str
    state: BuildState
    step: str | None
    progress: float
    trust: TrustClass | None
    trust_reason: str | None
    image_id: str | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class BuildCacheKey(Wire):
    """One set of sources' part of the package cache (its key: sha256 of mirror, suite,
    components, architecture and extra apt sources)."""

    key: str
    files: int
    bytes: int
    last_used: datetime | None


class BuildCacheOut(Wire):
    """The site's package cache for recipe builds (admins: GET/DELETE /admin/build-cache)."""

    enabled: bool
    directory: str | None
    max_bytes: int
    files: int
    bytes: int
    keys: list[BuildCacheKey] = Field(default_factory=list)
