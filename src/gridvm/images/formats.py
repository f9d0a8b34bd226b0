"""Disk image formats: inspecting untrusted files and the qemu-img operations gridvm uses.

Rules that hold for every call here:

- the format is always given to qemu-img explicitly (``-f``/``-F``); it never
  probes (probing is how a raw guest disk becomes a "qcow2 with a backing
  file", CVE-2015-5162-style);
- file names are passed as absolute paths, so qemu-img never reads them as a
  protocol (``json:``, ``nbd:``...);
- every run has a timeout and CPU/memory limits (see ``qemu_img``).

Decision on qcow2 uploads: they are converted like every other format rather
than stored as uploaded. Conversion re-writes all metadata with our qemu-img,
drops internal snapshots, bitmaps and unreferenced clusters the uploader may
not mean to share, and leaves nothing crafted for the QEMU that later boots
the image; the cost is one sequential copy at upload time.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from gridvm.common.errors import Conflict, ImageRejected, InvalidInput, NotFound
from gridvm.common.units import format_size
from gridvm.images import qemu_img
from gridvm.images.headers import (
    FORMATS,
    QCOW2_MAGIC,
    UPLOAD_HINT,
    VMDK_SELF_CONTAINED_TYPES,
    ImageFormat,
    check_qcow2_header,
    check_vdi_header,
    check_vmdk_header,
    detect_format,
    read_qcow2_header,
    regular_file_size,
    too_big,
)

__all__ = [
    "DiskInfo",
    "ImageFormat",
    "backing_file_of",
    "convert_to_qcow2",
    "create_overlay",
    "detect_format",
    "inspect_untrusted",
    "virtual_size_of",
]

# qemu-img check exit codes: 0 clean, 1 check failed, 2 corruptions,
# 3 only leaked clusters (harmless: conversion drops them), 63 no check support.
_CHECK_OK = (0, 3, 63)
_CHECK_CODES = (0, 1, 2, 3, 63)


@dataclass(frozen=True)
class DiskInfo:
    """What inspection found out about an accepted image."""

    format: ImageFormat
    virtual_size: int
    actual_size: int
    cluster_size: int | None
    backing_file: None = None  # accepted images never have one


def _abs(path: Path) -> Path:
    # absolute(), not resolve(): keep the name we were given, without following links.
    # An absolute name starts with "/", so qemu-img never reads it as a protocol.
    return Path(path).absolute()


def _display(path: Path, name: str | None) -> str:
    return name if name is not None else f"file {path.name!r}"


def _int(data: dict[str, Any], key: str, default: int | None = None) -> int:
    value = data.get(key, default)
    if not isinstance(value, int):
        raise qemu_img.QemuImgFailed(
            f"qemu-img info gave no integer {key!r}",
            hint="check the installed qemu-utils version (7.2 or later is supported)",
            returncode=0,
            stderr="",
        )
    return value


def _rejected_by_qemu(exc: qemu_img.QemuImgFailed, path: Path, name: str, fmt: str) -> Exception:
    if exc.timed_out or (exc.returncode is not None and exc.returncode < 0):
        return ImageRejected(
            f"{name} could not be inspected within the time and memory limits "
            f"(qemu-img {'timed out' if exc.timed_out else 'was stopped'})",
            hint="the image may be crafted or damaged; upload a plain image "
            "made with qemu-img convert",
        )
    detail = exc.stderr.replace(str(path), name) or "no error message"
    return ImageRejected(
        f"{name} is not a readable {fmt} image: {detail}",
        hint="check the file with `qemu-img check -f " + fmt + "` and upload an intact copy",
    )


def _prechecks(path: Path, fmt: ImageFormat, name: str, max_virtual_size: int) -> None:
    if fmt == "qcow2":
        check_qcow2_header(path, name=name, max_virtual_size=max_virtual_size)
    elif fmt == "vmdk":
        check_vmdk_header(path, name=name, max_virtual_size=max_virtual_size)
    elif fmt == "vdi":
        check_vdi_header(path, name=name, max_virtual_size=max_virtual_size)


def _check_info(
    info: dict[str, Any], path: Path, fmt: ImageFormat, name: str, max_virtual_size: int
) -> None:
    if info.get("format") != fmt:
        raise ImageRejected(
            f"{name} was read by qemu-img as {info.get('format')!r}, not as {fmt}",
            hint=UPLOAD_HINT,
        )
    backing = info.get("backing-filename") or info.get("full-backing-filename")
    if backing:
        raise ImageRejected(
            f"{name} names a backing file ({backing!r}); gridvm stores only self-contained images",
            hint="flatten it first (qemu-img convert -O qcow2 in out.qcow2) and upload the result",
        )
    if info.get("encrypted"):
        raise ImageRejected(
            f"{name} is encrypted, which gridvm cannot inspect or boot",
            hint="upload an unencrypted image",
        )
    specific = info.get("format-specific")
    data = specific.get("data", {}) if isinstance(specific, dict) else {}
    if not isinstance(data, dict):
        data = {}
    if data.get("data-file"):
        raise ImageRejected(
            f"{name} uses an external data file; gridvm stores only self-contained images",
            hint="convert it to a plain qcow2 first (qemu-img convert -O qcow2 in out.qcow2)",
        )
    if fmt == "vmdk":
        create_type = data.get("create-type")
        extents = data.get("extents", [])
        self_contained = (
            isinstance(extents, list)
            and len(extents) > 0
            and all(isinstance(e, dict) and e.get("filename") == str(path) for e in extents)
        )
        if create_type not in VMDK_SELF_CONTAINED_TYPES or not self_contained:
            raise ImageRejected(
                f"{name} is a VMDK of type {create_type!r} whose data is not all in the "
                "file itself",
                hint="convert it to a single self-contained file first "
                "(qemu-img convert -O qcow2 disk.vmdk disk.qcow2) and upload that",
            )
    virtual_size = _int(info, "virtual-size")
    if virtual_size > max_virtual_size:
        raise too_big(name, virtual_size, max_virtual_size)
    if virtual_size <= 0:
        raise ImageRejected(f"{name} has a virtual size of 0 bytes", hint=UPLOAD_HINT)


def inspect_untrusted(path: Path, *, max_virtual_size: int, name: str | None = None) -> DiskInfo:
    """Inspect an uploaded file and refuse anything gridvm should not store.

    Refused: unknown formats, files that are not disks, empty or truncated
    files, images naming any other file (qcow2 backing or data file, VMDK
    extents or parent), encrypted images, images qemu-img finds corrupt, and
    virtual sizes above ``max_virtual_size``. ``name`` is how error messages
    refer to the file (default: its file name; the server's paths stay out
    of messages meant for users).
    """
    path = _abs(path)
    shown = _display(path, name)
    fmt = detect_format(path, name=shown)
    _prechecks(path, fmt, shown, max_virtual_size)
    try:
        _, info = qemu_img.run_json(
            ["info", "--output=json", "-f", fmt, str(path)], limits=qemu_img.INFO_LIMITS
        )
    except qemu_img.QemuImgFailed as exc:
        raise _rejected_by_qemu(exc, path, shown, fmt) from exc
    _check_info(info, path, fmt, shown, max_virtual_size)
    if fmt != "raw":
        _check_consistency(path, fmt, shown)
    cluster = info.get("cluster-size")
    return DiskInfo(
        format=fmt,
        virtual_size=_int(info, "virtual-size"),
        actual_size=_int(info, "actual-size", regular_file_size(path, shown)),
        cluster_size=cluster if isinstance(cluster, int) else None,
    )


def _check_consistency(path: Path, fmt: ImageFormat, name: str) -> None:
    try:
        code, report = qemu_img.run_json(
            ["check", "--output=json", "-f", fmt, str(path)],
            limits=qemu_img.CHECK_LIMITS,
            ok_codes=_CHECK_CODES,
        )
    except qemu_img.QemuImgFailed as exc:
        raise _rejected_by_qemu(exc, path, name, fmt) from exc
    if code not in _CHECK_OK or report.get("corruptions") or report.get("check-errors"):
        problems = []
        for key in ("corruptions", "check-errors"):
            if report.get(key):
                problems.append(f"{report[key]} {key.replace('-', ' ')}")
        raise ImageRejected(
            f"{name} is a damaged {fmt} image: qemu-img check found "
            f"{', '.join(problems) or 'errors'}",
            hint="if the upload was cut short, upload the complete file; otherwise repair "
            "it (qemu-img check -r all) or upload an intact copy",
        )


def convert_to_qcow2(
    src: Path, src_format: ImageFormat, dst: Path, *, limits: qemu_img.Limits | None = None
) -> None:
    """Write ``src`` (of ``src_format``) to ``dst`` as a fresh, self-contained qcow2.

    ``src`` must have passed ``inspect_untrusted``; its header is checked again
    here (cheaply) so that no file reference can slip through.
    """
    if src_format not in FORMATS:
        raise InvalidInput(
            f"unknown source format {src_format!r}", hint=f"use one of {', '.join(FORMATS)}"
        )
    src, dst = _abs(src), _abs(dst)
    _prechecks(src, src_format, f"file {src.name!r}", max_virtual_size=2**63)
    qemu_img.run(
        ["convert", "-f", src_format, "-O", "qcow2", "-o", "compat=1.1", str(src), str(dst)],
        limits=limits or qemu_img.CONVERT_LIMITS,
    )


def flatten_overlay(overlay: Path, dst: Path) -> None:
    """Write one of gridvm's own overlays, with its backing chain merged in, to ``dst`` as a
    self-contained qcow2 (saving a VM's disk as an image). Never for uploaded files."""
    overlay, dst = _abs(overlay), _abs(dst)
    qemu_img.run(
        ["convert", "-U", "-f", "qcow2", "-O", "qcow2", "-o", "compat=1.1", str(overlay), str(dst)],
        limits=qemu_img.CONVERT_LIMITS,
    )


def export_raw(stored: Path, dst: Path) -> None:
    """Write a stored (self-contained, already checked) qcow2 to ``dst`` as a sparse raw
    disk, for an export: zero clusters stay holes in ``dst``."""
    stored, dst = _abs(stored), _abs(dst)
    qemu_img.run(
        ["convert", "-f", "qcow2", "-O", "raw", "-S", "4k", str(stored), str(dst)],
        limits=qemu_img.CONVERT_LIMITS,
    )


def _qcow2_info(path: Path) -> dict[str, Any]:
    """``qemu-img info`` of one of gridvm's own qcow2 files (shared lock: it may be in use)."""
    path = _abs(path)
    with _open_existing(path) as f:
        if f.read(4) != QCOW2_MAGIC:
            raise InvalidInput(
                f"{path} is not a qcow2 image", hint="pass a qcow2 file made by gridvm"
            )
    _, info = qemu_img.run_json(
        ["info", "-U", "--output=json", "-f", "qcow2", str(path)], limits=qemu_img.INFO_LIMITS
    )
    return info


def _open_existing(path: Path) -> BinaryIO:
    try:
        return path.open("rb")
    except FileNotFoundError:
        raise NotFound(f"{path} does not exist", hint="check the path") from None


def backing_file_of(path: Path) -> Path | None:
    """The absolute backing file of a qcow2 file, or None if it has none."""
    info = _qcow2_info(path)
    backing = info.get("full-backing-filename") or info.get("backing-filename")
    if not backing:
        return None
    return Path(str(backing))


def virtual_size_of(path: Path, *, fmt: ImageFormat = "qcow2") -> int:
    """Virtual (guest-visible) size in bytes of one of gridvm's own images."""
    if fmt == "qcow2":
        return _int(_qcow2_info(path), "virtual-size")
    path = _abs(path)
    with _open_existing(path):
        pass
    _, info = qemu_img.run_json(
        ["info", "-U", "--output=json", "-f", fmt, str(path)], limits=qemu_img.INFO_LIMITS
    )
    return _int(info, "virtual-size")


def create_overlay(base: Path, overlay: Path, *, size_bytes: int | None = None) -> None:
    """Create a qcow2 ``overlay`` whose backing file is ``base`` (a qcow2), by absolute path.

    Writes go to the overlay only; ``base`` is never modified. ``size_bytes``
    (default: the base's virtual size) may grow the disk but not shrink it.
    The overlay is created under a temporary name and linked into place, so
    an existing ``overlay`` is never overwritten (Conflict) and a half-made
    one is never visible. Mode 0600.
    """
    base, overlay = _abs(base), _abs(overlay)
    with _open_existing(base) as f:
        is_qcow2 = f.read(4) == QCOW2_MAGIC
    if not is_qcow2:
        raise InvalidInput(
            f"base image {base} is not a qcow2 file",
            hint="overlays are made only on gridvm's cached qcow2 images",
        )
    base_size = read_qcow2_header(base, name=f"base image {base}").size
    args = ["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(base)]
    if size_bytes is not None:
        if size_bytes < base_size:
            raise InvalidInput(
                f"a disk of {format_size(size_bytes)} is smaller than the image's virtual "
                f"size of {format_size(base_size)}",
                hint=f"ask for at least {format_size(base_size)}, or leave the disk size out "
                "to use the image's size",
            )
        if size_bytes % 512:
            raise InvalidInput(
                f"a disk size of {size_bytes} bytes is not a multiple of 512 bytes",
                hint="give the disk size in whole MiB or GiB",
            )
    if not overlay.parent.is_dir():
        raise NotFound(
            f"directory {overlay.parent} does not exist",
            hint="create the VM's directory before its disk",
        )
    if overlay.exists():
        raise Conflict(
            f"overlay {overlay} already exists",
            hint="delete the old disk first or choose another path",
        )
    tmp = overlay.with_name(f".{overlay.name}.{secrets.token_hex(6)}.tmp")
    args.append(str(tmp))
    if size_bytes is not None:
        args.append(str(size_bytes))
    try:
        qemu_img.run(args, limits=qemu_img.CREATE_LIMITS)
        tmp.chmod(0o600)
        try:
            os.link(tmp, overlay)
        except FileExistsError:
            raise Conflict(
                f"overlay {overlay} already exists",
                hint="delete the old disk first or choose another path",
            ) from None
    finally:
        tmp.unlink(missing_ok=True)
