"""Installed packages: the dpkg status database, and an rpm database read with ``rpm``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from debian import deb822

from gridvm.images.inspection.tools import ToolError, ToolLimits, binary, run_tool

_RPM_LIMITS = ToolLimits(timeout_s=60, max_output=32 * 1024**2)
_RPM_FORMAT = "%{NAME}\\t%{EPOCHNUM}\\t%{VERSION}\\t%{RELEASE}\\t%{ARCH}\\t%{SOURCERPM}\\n"


def dpkg_packages(status: str) -> list[dict[str, Any]]:
    """The installed packages of a dpkg status file, with their source package and version.

    Only packages whose Status says ``installed`` count (not removed ones whose configuration
    files stay, nor half-installed ones). The Source field reads ``name`` or ``name (version)``;
    without it the source is the binary package itself, at the same version.
    """
    found: list[dict[str, Any]] = []
    for para in deb822.Deb822.iter_paragraphs(status.splitlines(keepends=True)):
        name = para.get("Package")
        version = para.get("Version")
        state = para.get("Status", "").split()
        if not name or not version or len(state) != 3 or state[2] != "installed":
            continue
        source, source_version = name, version
        if para.get("Source"):
            parts = para["Source"].split()
            source = parts[0]
            if len(parts) > 1 and parts[1].startswith("(") and parts[1].endswith(")"):
                source_version = parts[1][1:-1]
        found.append(
            {
                "name": name,
                "version": version,
                "arch": para.get("Architecture", ""),
                "source": source,
                "source_version": source_version,
                "kind": "deb",
            }
        )
    return sorted(found, key=lambda p: (p["name"], p["arch"]))


def _source_of(source_rpm: str) -> tuple[str, str]:
    """``bash-5.1.8-6.el9.src.rpm`` -> ("bash", "5.1.8-6.el9")."""
    stem = source_rpm.removesuffix(".rpm").removesuffix(".src").removesuffix(".nosrc")
    parts = stem.rsplit("-", 2)
    if len(parts) != 3:
        return stem, ""
    return parts[0], f"{parts[1]}-{parts[2]}"


def rpm_packages(dbpath: Path) -> list[dict[str, Any]]:
    """The packages of the rpm database copied into ``dbpath`` (read with ``rpm -qa``)."""
    out = run_tool(
        [binary("rpm", "rpm"), "-qa", "--dbpath", str(dbpath), "--qf", _RPM_FORMAT],
        limits=_RPM_LIMITS,
    )
    found: list[dict[str, Any]] = []
    for line in out.decode("utf-8", errors="replace").splitlines():
        fields = line.split("\t")
        if len(fields) != 6:
            continue
        name, epoch, version, release, arch, source_rpm = fields
        full = f"{version}-{release}" if epoch in ("", "0") else f"{epoch}:{version}-{release}"
        source, source_version = _source_of(source_rpm) if source_rpm != "(none)" else (name, full)
        found.append(
            {
                "name": name,
                "version": full,
                "arch": arch,
                "source": source,
                "source_version": source_version,
                "kind": "rpm",
            }
        )
    return sorted(found, key=lambda p: (p["name"], p["arch"]))


__all__ = ["ToolError", "dpkg_packages", "rpm_packages"]
