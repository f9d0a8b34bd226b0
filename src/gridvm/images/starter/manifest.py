"""``manifest.json``: what the rest of gridvm needs to know to boot the image.

Loading checks every field's type and that file names stay inside the image
directory, so a damaged or hand-edited manifest fails here, at load time,
rather than as a confusing QEMU error later.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gridvm.common.errors import InvalidInput

MANIFEST_NAME = "manifest.json"


@dataclass(frozen=True)
class TinyManifest:
    """The fields of ``manifest.json`` (file names are relative to the image directory)."""

    name: str
    kernel_cmdline: str
    kernel_version: str
    busybox_version: str
    inputs_sha256: str
    disk: str
    kernel: str
    initrd: str
    os: str
    min_memory_mb: int

    def file_names(self) -> tuple[str, str, str]:
        """The image's files: disk, kernel and initrd."""
        return (self.disk, self.kernel, self.initrd)

    def to_json(self) -> str:
        """The manifest as written to disk (stable key order, trailing newline)."""
        return json.dumps(dataclasses.asdict(self), indent=2) + "\n"

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> TinyManifest:
        """Build from parsed JSON; unknown keys are ignored, missing or mistyped ones raise."""
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            expected = int if field.type in (int, "int") else str
            value = data.get(field.name)
            if type(value) is not expected:
                raise InvalidInput(
                    f"manifest field {field.name!r} must be a {expected.__name__}, got {value!r}"
                )
            values[field.name] = value
        manifest = cls(**values)
        for file_name in manifest.file_names():
            if not file_name or "/" in file_name or file_name in (".", ".."):
                raise InvalidInput(f"manifest file name {file_name!r} is not a plain file name")
        return manifest


def load_manifest(image_dir: Path) -> TinyManifest:
    """Read and check ``image_dir/manifest.json``."""
    path = image_dir / MANIFEST_NAME
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidInput(f"{path} does not hold a JSON object")
    return TinyManifest.from_mapping(data)
