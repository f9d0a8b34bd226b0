"""Real disk images, made with qemu-img and mkfs.ext4, shared by the image tests."""

from __future__ import annotations

import json
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

MiB = 1024 * 1024


def qemu_img(*args: str) -> str:
    proc = subprocess.run(["qemu-img", *args], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def qemu_img_info(path: Path, fmt: str) -> dict[str, Any]:
    info: dict[str, Any] = json.loads(qemu_img("info", "-U", "--output=json", "-f", fmt, str(path)))
    return info


def same_content(a: Path, a_fmt: str, b: Path, b_fmt: str) -> bool:
    proc = subprocess.run(
        ["qemu-img", "compare", "-q", "-f", a_fmt, "-F", b_fmt, str(a), str(b)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode == 0


@dataclass(frozen=True)
class SampleImages:
    """Files of every kind the tests upload. Treat them as read-only (copy before changing)."""

    dir: Path
    raw_ext4: Path  # 8 MiB ext4 holding a few files
    raw_mbr: Path  # 1 MiB, just an MBR boot signature and some data
    qcow2: Path  # the ext4 disk as qcow2
    vmdk: Path  # monolithicSparse
    vmdk_stream: Path  # streamOptimized
    vdi: Path
    secret: Path  # a raw file standing for a host file an attacker wants to read

    def bytes_of(self, path: Path) -> bytes:
        return path.read_bytes()


@pytest.fixture(scope="session")
def samples(tmp_path_factory: pytest.TempPathFactory) -> SampleImages:
    d = tmp_path_factory.mktemp("samples")
    content = d / "content"
    content.mkdir()
    (content / "hello.txt").write_text("hello from a guest disk\n")
    (content / "data.bin").write_bytes(bytes(range(256)) * 512)
    raw = d / "disk.raw"
    subprocess.run(
        ["mkfs.ext4", "-q", "-F", "-d", str(content), "-L", "testdisk", str(raw), "8M"],
        check=True,
        capture_output=True,
    )
    mbr = d / "mbr.raw"
    block = bytearray(MiB)
    block[446:462] = bytes([0x80, 0, 2, 0, 0x83, 0, 0, 0]) + struct.pack("<II", 1, 2047)
    block[510:512] = b"\x55\xaa"
    block[4096 : 4096 + 11] = b"mbr payload"
    mbr.write_bytes(bytes(block))
    qcow2 = d / "disk.qcow2"
    qemu_img("convert", "-f", "raw", "-O", "qcow2", str(raw), str(qcow2))
    vmdk = d / "disk.vmdk"
    qemu_img("convert", "-f", "raw", "-O", "vmdk", str(raw), str(vmdk))
    vmdk_stream = d / "stream.vmdk"
    qemu_img(
        "convert",
        "-f",
        "raw",
        "-O",
        "vmdk",
        "-o",
        "subformat=streamOptimized",
        str(raw),
        str(vmdk_stream),
    )
    vdi = d / "disk.vdi"
    qemu_img("convert", "-f", "raw", "-O", "vdi", str(raw), str(vdi))
    secret = d / "secret.raw"
    secret.write_bytes(b"TOP SECRET host file\n".ljust(MiB, b"\0"))
    return SampleImages(d, raw, mbr, qcow2, vmdk, vmdk_stream, vdi, secret)


def vmdk_with_embedded_descriptor(sparse_vmdk: Path, out: Path, descriptor: bytes) -> Path:
    """The CVE-2022-47951 shape: a sparse VMDK header with capacity 0 whose
    embedded descriptor points at other files."""
    data = bytearray(sparse_vmdk.read_bytes())
    magic, _version, _flags, _capacity, _grain, desc_sector, desc_sectors = struct.unpack_from(
        "<4sIIQQQQ", data
    )
    assert magic == b"KDMV" and desc_sector
    struct.pack_into("<Q", data, 12, 0)  # capacity = 0
    start, length = desc_sector * 512, desc_sectors * 512
    data[start : start + length] = descriptor.ljust(length, b"\0")
    out.write_bytes(bytes(data))
    return out
