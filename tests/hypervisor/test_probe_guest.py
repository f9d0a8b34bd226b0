"""The probe guest's bytes are what its assembly source says."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from gridvm.hypervisor import probe_guest


def test_boot_sector_shape() -> None:
    assert len(probe_guest.BOOT_SECTOR) == probe_guest.SECTOR_SIZE
    assert probe_guest.BOOT_SECTOR.endswith(b"\x55\xaa")
    assert probe_guest.BEGIN_MARKER in probe_guest.BOOT_SECTOR
    assert probe_guest.DONE_MARKER in probe_guest.BOOT_SECTOR
    image = probe_guest.disk_image()
    assert len(image) == probe_guest.DISK_SIZE
    assert image.startswith(probe_guest.BOOT_SECTOR)


@pytest.mark.skipif(
    shutil.which("as") is None or shutil.which("ld") is None, reason="needs GNU binutils"
)
def test_bytes_match_the_assembly_source(tmp_path: Path) -> None:
    source = tmp_path / "probe.S"
    source.write_text(probe_guest.PROBE_ASM)
    obj, binary = tmp_path / "probe.o", tmp_path / "probe.bin"
    subprocess.run(["as", "--64", "-o", str(obj), str(source)], check=True, timeout=30)
    subprocess.run(
        [
            "ld",
            "-m",
            "elf_x86_64",
            "-Ttext=0x7c00",
            "--oformat=binary",
            "-o",
            str(binary),
            str(obj),
        ],
        check=True,
        timeout=30,
    )
    assert binary.read_bytes() == probe_guest.BOOT_SECTOR
