"""Reading image headers ourselves, before any qemu-img run.

Uploaded images are untrusted. qemu-img must never *guess* a format
(CVE-2015-5162-style attacks make a raw disk look like a qcow2 with a backing
file), and merely opening a qcow2 or VMDK makes qemu open every file its
header names (backing file, external data file, VMDK extents:
CVE-2022-47951). So the format is decided here from magic bytes, and headers
that name any other file are refused here, before qemu-img sees the file.
"""

from __future__ import annotations

import os
import stat
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from gridvm.common.errors import ImageRejected
from gridvm.common.units import format_size

ImageFormat = Literal["qcow2", "raw", "vmdk", "vdi"]
FORMATS: tuple[ImageFormat, ...] = ("qcow2", "raw", "vmdk", "vdi")

UPLOAD_HINT = "upload a qcow2, raw, vmdk or vdi disk image"

SECTOR = 512
QCOW2_MAGIC = b"QFI\xfb"
VMDK_SPARSE_MAGIC = b"KDMV"
VMDK_DESCRIPTOR_MAGIC = b"# Disk DescriptorFile"
VDI_SIGNATURE = b"\x7f\x10\xda\xbe"  # 0xbeda107f, little endian
VDI_SIGNATURE_OFFSET = 0x40

# Read this much of the start of a file to detect its format.
_HEAD = 0x10048  # covers the btrfs superblock magic at 0x10040

# Known formats we refuse, with the advice to give: (offset, magic, name, hint).
_REFUSED_AT_START: tuple[tuple[int, bytes, str, str], ...] = (
    (
        0,
        b"conectix",
        "a VHD (Virtual PC / Hyper-V) image",
        "convert it first: qemu-img convert -f vpc -O qcow2 disk.vhd disk.qcow2",
    ),
    (
        0,
        b"vhdxfile",
        "a VHDX (Hyper-V) image",
        "convert it first: qemu-img convert -f vhdx -O qcow2 disk.vhdx disk.qcow2",
    ),
    (
        0,
        b"QED\x00",
        "a QED image",
        "convert it first: qemu-img convert -f qed -O qcow2 disk.qed disk.qcow2",
    ),
    (0, b"LUKS\xba\xbe", "a LUKS-encrypted volume", "upload an unencrypted disk image"),
    (
        0,
        b"WithoutFreeSpace",
        "a Parallels image",
        "convert it first: qemu-img convert -f parallels -O qcow2 disk.hdd disk.qcow2",
    ),
    (
        0,
        b"WithouFreSpacExt",
        "a Parallels image",
        "convert it first: qemu-img convert -f parallels -O qcow2 disk.hdd disk.qcow2",
    ),
    (
        0,
        b"Bochs Virtual HD Image",
        "a Bochs image",
        "convert it first: qemu-img convert -f bochs -O qcow2 disk.img disk.qcow2",
    ),
    (
        0,
        b"#!/bin/sh\n#V2.0 Format",
        "a cloop image",
        "convert it first: qemu-img convert -f cloop -O qcow2 disk.cloop disk.qcow2",
    ),
    (
        0,
        b"COWD",
        "a VMware 3 (COWD) sparse image",
        "convert it first: qemu-img convert -f vmdk -O qcow2 disk.vmdk disk.qcow2",
    ),
    (0, b"\x1f\x8b", "a gzip-compressed file", "decompress it and upload the disk image inside"),
    (0, b"\xfd7zXZ\x00", "an xz-compressed file", "decompress it and upload the disk image inside"),
    (0, b"BZh", "a bzip2-compressed file", "decompress it and upload the disk image inside"),
    (
        0,
        b"\x28\xb5\x2f\xfd",
        "a zstd-compressed file",
        "decompress it and upload the disk image inside",
    ),
    (0, b"PK\x03\x04", "a zip archive", "unpack it and upload the disk image inside"),
    (0, b"7z\xbc\xaf\x27\x1c", "a 7-zip archive", "unpack it and upload the disk image inside"),
    (257, b"ustar", "a tar archive (an OVA?)", "unpack it and upload the disk image inside"),
)
_REFUSED_AT_END: tuple[tuple[bytes, str, str], ...] = (
    (
        b"conectix",
        "a fixed-size VHD image",
        "convert it first: qemu-img convert -f vpc -O qcow2 disk.vhd disk.qcow2",
    ),
    (b"koly", "an Apple DMG image", "convert it to raw or qcow2 first"),
)


def _refuse(name: str, problem: str, hint: str = UPLOAD_HINT) -> ImageRejected:
    return ImageRejected(f"{name} {problem}", hint=hint)


def _display(path: Path, name: str | None) -> str:
    return name if name is not None else f"file {path.name!r}"


def regular_file_size(path: Path, name: str) -> int:
    """Size of ``path``, which must be a regular file (no symlink, FIFO or device)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise _refuse(name, "does not exist", "upload the file again") from None
    if not stat.S_ISREG(st.st_mode):
        raise _refuse(name, "is not a regular file")
    return st.st_size


def _read_at(f: BinaryIO, offset: int, length: int) -> bytes:
    f.seek(offset)
    return f.read(length)


def _raw_disk_signature(head: bytes) -> str | None:
    """Name of the disk or file-system signature found in ``head``, if any."""
    if head[0x200:0x208] == b"EFI PART":
        return "GPT partition table"
    if head[0:4] == b"XFSB":
        return "XFS file system"
    if head[0x438:0x43A] == b"\x53\xef":
        return "ext2/3/4 file system"
    if head[0x10040:0x10048] == b"_BHRfS_M":
        return "btrfs file system"
    if head[0x8001:0x8006] == b"CD001":
        return "ISO 9660 file system"
    if (
        len(head) >= SECTOR
        and head[0] in (0xEB, 0xE9)
        and (head[0x36:0x39] == b"FAT" or head[0x52:0x57] == b"FAT32")
    ):
        return "FAT file system"
    if head[0x1FE:0x200] == b"\x55\xaa":
        return "MBR boot signature"
    return None


def detect_format(path: Path, *, name: str | None = None) -> ImageFormat:
    """Decide the format of an untrusted file from its magic bytes.

    ``name`` is how messages refer to the file (default: its file name).
    Raises ImageRejected for empty files, formats gridvm does not take, and
    files that do not look like a disk at all.
    """
    shown = _display(path, name)
    size = regular_file_size(path, shown)
    if size == 0:
        raise _refuse(shown, "is empty")
    with path.open("rb") as f:
        head = f.read(_HEAD)
        tail = _read_at(f, size - SECTOR, SECTOR) if size >= 2 * SECTOR else b""

    if head.startswith(QCOW2_MAGIC):
        return "qcow2"
    if head.startswith(VMDK_SPARSE_MAGIC) or head.startswith(VMDK_DESCRIPTOR_MAGIC):
        return "vmdk"
    if head[VDI_SIGNATURE_OFFSET : VDI_SIGNATURE_OFFSET + 4] == VDI_SIGNATURE:
        return "vdi"
    for offset, magic, what, hint in _REFUSED_AT_START:
        if head[offset : offset + len(magic)] == magic:
            raise _refuse(shown, f"is {what}, not a disk image gridvm accepts", hint)
    for magic, what, hint in _REFUSED_AT_END:
        if tail.startswith(magic):
            raise _refuse(shown, f"is {what}, not a disk image gridvm accepts", hint)

    signature = _raw_disk_signature(head)
    if signature is None:
        raise _refuse(
            shown,
            "is not a disk image: it has no known image header, partition table "
            "or file-system superblock",
        )
    if size % SECTOR:
        raise _refuse(
            shown,
            f"is not a disk image: it has a {signature} but its size ({size} bytes) "
            f"is not a multiple of {SECTOR} bytes, so it is probably truncated",
            "upload the complete raw disk image",
        )
    return "raw"


# --- qcow2 ----------------------------------------------------------------

_QCOW2_V2 = struct.Struct(">4sIQIIQIIQQIIQ")  # 72 bytes
_QCOW2_V3_EXTRA = struct.Struct(">QQQII")  # 32 bytes after the v2 part
_INCOMPAT_DIRTY = 1 << 0
_INCOMPAT_CORRUPT = 1 << 1
_INCOMPAT_DATA_FILE = 1 << 2
_INCOMPAT_KNOWN = (1 << 5) - 1  # dirty, corrupt, data file, compression type, extended L2
_EXT_END = 0x00000000
_EXT_DATA_FILE = 0x44415441
_EXT_CRYPTO = 0x0537BE77


@dataclass(frozen=True)
class Qcow2Header:
    version: int
    backing_file_offset: int
    backing_file_size: int
    cluster_bits: int
    size: int
    crypt_method: int
    l1_size: int
    l1_table_offset: int
    refcount_table_offset: int
    refcount_table_clusters: int
    incompatible_features: int
    header_length: int
    extension_types: tuple[int, ...]

    @property
    def cluster_size(self) -> int:
        return 1 << self.cluster_bits


def read_qcow2_header(path: Path, *, name: str | None = None) -> Qcow2Header:
    """Parse the fixed qcow2 header and list its header extensions."""
    shown = _display(path, name)
    with path.open("rb") as f:
        data = f.read(4096)
        if len(data) < _QCOW2_V2.size or not data.startswith(QCOW2_MAGIC):
            raise _refuse(shown, "is not a complete qcow2 image: its header is cut short")
        (
            _magic,
            version,
            backing_off,
            backing_size,
            cluster_bits,
            size,
            crypt,
            l1_size,
            l1_off,
            rc_off,
            rc_clusters,
            _nb_snap,
            _snap_off,
        ) = _QCOW2_V2.unpack_from(data)
        if version not in (2, 3):
            raise _refuse(
                shown,
                f"is a qcow2 image of version {version}, which is not supported",
                "convert it with a current qemu-img: qemu-img convert -O qcow2 in.qcow2 out.qcow2",
            )
        if not 9 <= cluster_bits <= 21:
            raise _refuse(shown, f"is not a valid qcow2 image: cluster_bits is {cluster_bits}")
        incompat = 0
        header_length = _QCOW2_V2.size
        if version == 3:
            if len(data) < _QCOW2_V2.size + _QCOW2_V3_EXTRA.size:
                raise _refuse(shown, "is not a complete qcow2 image: its header is cut short")
            incompat, _compat, _autoclear, _rc_order, header_length = _QCOW2_V3_EXTRA.unpack_from(
                data, _QCOW2_V2.size
            )
            if header_length < _QCOW2_V2.size + _QCOW2_V3_EXTRA.size:
                raise _refuse(shown, "is not a valid qcow2 image: bad header length")
        extensions = _qcow2_extension_types(f, header_length, 1 << cluster_bits)
    return Qcow2Header(
        version=version,
        backing_file_offset=backing_off,
        backing_file_size=backing_size,
        cluster_bits=cluster_bits,
        size=size,
        crypt_method=crypt,
        l1_size=l1_size,
        l1_table_offset=l1_off,
        refcount_table_offset=rc_off,
        refcount_table_clusters=rc_clusters,
        incompatible_features=incompat,
        header_length=header_length,
        extension_types=extensions,
    )


def _qcow2_extension_types(f: BinaryIO, start: int, cluster_size: int) -> tuple[int, ...]:
    """Types of the header extensions from ``start`` to the end of cluster 0.

    Walks them exactly as qemu's qcow2_read_extensions does (no realignment of
    ``start``), so an extension cannot hide from us yet be seen by qemu.
    """
    cluster = _read_at(f, 0, cluster_size + 8)
    found: list[int] = []
    offset = start
    while offset < cluster_size and offset + 8 <= len(cluster):
        ext_type, length = struct.unpack_from(">II", cluster, offset)
        if ext_type == _EXT_END:
            break
        found.append(ext_type)
        offset += 8 + ((length + 7) & ~7)
    return tuple(found)


def _qcow2_backing_name(path: Path, header: Qcow2Header) -> str:
    with path.open("rb") as f:
        raw = _read_at(f, header.backing_file_offset, min(header.backing_file_size, 1023))
    return raw.decode("utf-8", errors="replace")


def check_qcow2_header(path: Path, *, name: str, max_virtual_size: int) -> Qcow2Header:
    """Refuse a qcow2 whose header names another file, is encrypted, damaged or too big."""
    header = read_qcow2_header(path, name=name)
    file_size = regular_file_size(path, name)
    if header.backing_file_offset != 0:
        backing = _qcow2_backing_name(path, header)
        raise _refuse(
            name,
            f"is a qcow2 image that names a backing file ({backing!r}); gridvm stores "
            "only self-contained images, because a backing file reference can make the "
            "server read its own files",
            "flatten it first (qemu-img convert -O qcow2 overlay.qcow2 standalone.qcow2) "
            "and upload the result",
        )
    if header.incompatible_features & _INCOMPAT_DATA_FILE or _EXT_DATA_FILE in (
        header.extension_types
    ):
        raise _refuse(
            name,
            "is a qcow2 image with an external data file; gridvm stores only self-contained images",
            "convert it to a plain qcow2 first (qemu-img convert -O qcow2 in.qcow2 out.qcow2)",
        )
    if header.crypt_method != 0 or _EXT_CRYPTO in header.extension_types:
        raise _refuse(
            name,
            "is an encrypted qcow2 image, which gridvm cannot inspect or boot",
            "upload an unencrypted image; pass secrets to the VM through its context instead",
        )
    if header.incompatible_features & _INCOMPAT_CORRUPT:
        raise _refuse(
            name,
            "is a qcow2 image that qemu has marked as corrupt",
            "repair it (qemu-img check -r all) or upload an intact copy",
        )
    if header.incompatible_features & _INCOMPAT_DIRTY:
        raise _refuse(
            name,
            "is a qcow2 image that was not closed cleanly (its dirty flag is set)",
            "run qemu-img check -r all on it, then upload it again",
        )
    if header.incompatible_features & ~_INCOMPAT_KNOWN:
        raise _refuse(
            name,
            f"is a qcow2 image using unknown incompatible features "
            f"(0x{header.incompatible_features:x})",
            "convert it with qemu-img 7.2: qemu-img convert -O qcow2 -o compat=1.1 in out",
        )
    if header.size > max_virtual_size:
        raise too_big(name, header.size, max_virtual_size)
    # The header itself, the first refcount table entry and the whole L1 table
    # must be in the file; `qemu-img check` looks at everything else.
    needed = max(
        header.header_length,
        header.refcount_table_offset + 8,
        header.l1_table_offset + header.l1_size * 8 if header.l1_size else 0,
    )
    if needed > file_size:
        raise truncated(name, needed, file_size)
    return header


def too_big(name: str, virtual_size: int, limit: int) -> ImageRejected:
    return ImageRejected(
        f"{name} has a virtual disk size of {format_size(virtual_size)}, above the limit "
        f"of {format_size(limit)}",
        hint="shrink the disk (shrink its file system, then qemu-img resize --shrink) "
        "or ask an administrator for a higher limit",
    )


def truncated(name: str, needed: int, have: int) -> ImageRejected:
    return ImageRejected(
        f"{name} is truncated: its header refers to data up to byte {needed} but the "
        f"file has only {have} bytes",
        hint="upload the complete file (compare its size and checksum with the original)",
    )


# --- vmdk -----------------------------------------------------------------

_VMDK4 = struct.Struct("<4sIIQQQQ")  # magic, version, flags, capacity, grain, desc off, desc size
VMDK_SELF_CONTAINED_TYPES = frozenset({"monolithicSparse", "streamOptimized"})
_DESCRIPTOR_MAX = 64 * 1024
_PARENT_AREA = 20 * SECTOR  # qemu's DESC_SIZE
_SELF_CONTAINED_HINT = (
    "convert it to a single self-contained file first "
    "(qemu-img convert -O qcow2 disk.vmdk disk.qcow2) and upload that"
)


def check_vmdk_header(path: Path, *, name: str, max_virtual_size: int) -> None:
    """Refuse any VMDK that is not one self-contained sparse file.

    A text descriptor always refers to other files (its extents). A sparse
    header with zero capacity makes qemu follow the embedded descriptor's
    extents instead (CVE-2022-47951), so that is refused too.
    """
    with path.open("rb") as f:
        head = f.read(_VMDK4.size)
        if head.startswith(VMDK_DESCRIPTOR_MAGIC):
            raise _refuse(
                name,
                "is a VMDK descriptor file: its data lives in other files (extents) that "
                "gridvm will not open",
                _SELF_CONTAINED_HINT,
            )
        if len(head) < _VMDK4.size or not head.startswith(VMDK_SPARSE_MAGIC):
            raise _refuse(name, "is not a complete VMDK image: its header is cut short")
        _magic, version, _flags, capacity, _grain, desc_sector, desc_sectors = _VMDK4.unpack(head)
        if version not in (1, 2, 3):
            raise _refuse(name, f"is a VMDK of unsupported version {version}", _SELF_CONTAINED_HINT)
        if capacity == 0:
            raise _refuse(
                name,
                "is a VMDK whose header declares no capacity and defers to its embedded "
                "descriptor, which can point at other files (CVE-2022-47951)",
                _SELF_CONTAINED_HINT,
            )
        if capacity * SECTOR > max_virtual_size:
            raise too_big(name, capacity * SECTOR, max_virtual_size)
        descriptor = b""
        if desc_sector:
            length = min(desc_sectors * SECTOR, _DESCRIPTOR_MAX)
            descriptor = _read_at(f, desc_sector * SECTOR, length).split(b"\x00", 1)[0]
        # qemu looks for a parent anywhere in the 10 KiB at 0x200, whatever the header says.
        parent_area = _read_at(f, 0x200, _PARENT_AREA).split(b"\x00", 1)[0]
    if b"parentFileNameHint" in descriptor or b"parentFileNameHint" in parent_area:
        raise _refuse(
            name,
            "is a VMDK delta disk that names a parent (backing) file; gridvm stores "
            "only self-contained images",
            _SELF_CONTAINED_HINT,
        )
    _check_embedded_descriptor(descriptor.decode("latin-1"), name)


def _check_embedded_descriptor(text: str, name: str) -> None:
    if not text:
        return
    create_type: str | None = None
    extents: list[str] = []
    for raw_line in text.splitlines():
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if sep and key.strip() == "createType":
            create_type = value.strip().strip('"')
        elif line.split(None, 1)[0] in ("RW", "RDONLY", "NOACCESS"):
            extents.append(line)
    if create_type is not None and create_type not in VMDK_SELF_CONTAINED_TYPES:
        raise _refuse(
            name,
            f"is a VMDK of type {create_type!r}, whose data lives in other files",
            _SELF_CONTAINED_HINT,
        )
    if len(extents) > 1 or any(e.split()[2:3] != ["SPARSE"] for e in extents):
        raise _refuse(
            name,
            "is a VMDK whose embedded descriptor lists extents other than the file itself",
            _SELF_CONTAINED_HINT,
        )


# --- vdi ------------------------------------------------------------------

_VDI_FIELDS = struct.Struct("<IIIII")  # at 0x40: signature, version, header size, type, flags
_VDI_OFFSETS = struct.Struct("<II")  # at 0x154: block map offset, data offset
_VDI_SIZES = struct.Struct("<QIIII")  # at 0x170: disk size, block size, extra, blocks, allocated
_VDI_HEADER_END = 0x188


def check_vdi_header(path: Path, *, name: str, max_virtual_size: int) -> None:
    """Refuse a VDI that is too big or truncated (qemu-img check does not notice the latter)."""
    file_size = regular_file_size(path, name)
    with path.open("rb") as f:
        head = f.read(_VDI_HEADER_END)
    if len(head) < _VDI_HEADER_END:
        raise truncated(name, _VDI_HEADER_END, file_size)
    _sig, version, _hsize, image_type, _flags = _VDI_FIELDS.unpack_from(head, 0x40)
    offset_bmap, offset_data = _VDI_OFFSETS.unpack_from(head, 0x154)
    disk_size, block_size, _extra, blocks, allocated = _VDI_SIZES.unpack_from(head, 0x170)
    if version != 0x00010001 or image_type not in (1, 2):
        raise _refuse(
            name,
            f"is a VDI of an unsupported kind (version 0x{version:08x}, type {image_type}); "
            "only normal and fixed VDI 1.1 images are accepted",
            "convert it with VirtualBox (VBoxManage clonemedium --format VDI) or to qcow2",
        )
    if disk_size > max_virtual_size:
        raise too_big(name, disk_size, max_virtual_size)
    needed = max(offset_bmap + blocks * 4, offset_data + allocated * block_size)
    if needed > file_size:
        raise truncated(name, needed, file_size)
