from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import time
from pathlib import Path

import pytest

from gridvm.common.errors import Conflict, ImageRejected, InvalidInput, NotFound, ToolFailed
from gridvm.common.units import format_size
from gridvm.images import qemu_img as qemu_img_mod
from gridvm.images.formats import (
    backing_file_of,
    convert_to_qcow2,
    create_overlay,
    detect_format,
    inspect_untrusted,
    virtual_size_of,
)
from tests.images.conftest import (
    MiB,
    SampleImages,
    qemu_img,
    qemu_img_info,
    same_content,
    vmdk_with_embedded_descriptor,
)

GiB = 1024 * MiB
LIMIT = 1 * GiB


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def synthetic(tmp_path: Path, name: str, size: int, patches: dict[int, bytes]) -> Path:
    data = bytearray(size)
    for offset, value in patches.items():
        data[offset : offset + len(value)] = value
    path = tmp_path / name
    path.write_bytes(bytes(data))
    return path


# --- detect_format ---------------------------------------------------------


def test_detects_the_accepted_formats(samples: SampleImages) -> None:
    assert detect_format(samples.qcow2) == "qcow2"
    assert detect_format(samples.vmdk) == "vmdk"
    assert detect_format(samples.vmdk_stream) == "vmdk"
    assert detect_format(samples.vdi) == "vdi"
    assert detect_format(samples.raw_ext4) == "raw"
    assert detect_format(samples.raw_mbr) == "raw"


@pytest.mark.parametrize(
    ("patches", "size"),
    [
        ({512: b"EFI PART"}, 1 * MiB),  # GPT header
        ({0: b"XFSB"}, 1 * MiB),
        ({0x10040: b"_BHRfS_M"}, 1 * MiB),
        ({32769: b"CD001"}, 1 * MiB),
        ({0: b"\xeb\x3c\x90", 54: b"FAT16   "}, 1 * MiB),
    ],
    ids=["gpt", "xfs", "btrfs", "iso9660", "fat"],
)
def test_detects_raw_disks_by_their_signatures(
    tmp_path: Path, patches: dict[int, bytes], size: int
) -> None:
    assert detect_format(synthetic(tmp_path, "disk.img", size, patches)) == "raw"


def test_detects_a_vmdk_descriptor_as_vmdk(tmp_path: Path) -> None:
    desc = tmp_path / "d.vmdk"
    desc.write_text('# Disk DescriptorFile\nversion=1\ncreateType="monolithicFlat"\n')
    assert detect_format(desc) == "vmdk"


def test_refuses_an_empty_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.img"
    empty.touch()
    with pytest.raises(ImageRejected, match="is empty") as err:
        detect_format(empty)
    assert err.value.hint


def test_refuses_a_text_file_with_a_clear_message(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("just some notes\n" * 100)
    with pytest.raises(ImageRejected) as err:
        detect_format(text, name="the upload")
    assert str(err.value.message).startswith("the upload is not a disk image:")
    assert err.value.hint == "upload a qcow2, raw, vmdk or vdi disk image"


def test_refuses_random_bytes_without_any_disk_signature(tmp_path: Path) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(bytes(MiB))
    with pytest.raises(ImageRejected, match="not a disk image"):
        detect_format(junk)


def test_refuses_a_raw_disk_whose_size_is_not_whole_sectors(
    tmp_path: Path, samples: SampleImages
) -> None:
    cut = tmp_path / "cut.raw"
    cut.write_bytes(samples.raw_mbr.read_bytes()[:5000])
    with pytest.raises(ImageRejected, match="not a multiple of 512 bytes"):
        detect_format(cut)


@pytest.mark.parametrize(
    ("offset", "magic", "words"),
    [
        (0, b"conectix", "VHD"),
        (0, b"vhdxfile", "VHDX"),
        (0, b"QED\x00", "QED"),
        (0, b"LUKS\xba\xbe", "LUKS"),
        (0, b"\x1f\x8b\x08", "gzip"),
        (0, b"\xfd7zXZ\x00", "xz"),
        (257, b"ustar", "tar"),
    ],
)
def test_names_the_formats_it_refuses(
    tmp_path: Path, offset: int, magic: bytes, words: str
) -> None:
    f = synthetic(tmp_path, "x.img", MiB, {offset: magic, 510: b"\x55\xaa"})
    with pytest.raises(ImageRejected, match=words) as err:
        detect_format(f)
    assert err.value.hint


def test_refuses_a_fixed_vhd_by_its_footer(tmp_path: Path) -> None:
    f = synthetic(tmp_path, "fixed.vhd", MiB + 512, {510: b"\x55\xaa", MiB: b"conectix"})
    with pytest.raises(ImageRejected, match="fixed-size VHD"):
        detect_format(f)


def test_refuses_symlinks_and_fifos(tmp_path: Path, samples: SampleImages) -> None:
    link = tmp_path / "link.qcow2"
    link.symlink_to(samples.qcow2)
    with pytest.raises(ImageRejected, match="not a regular file"):
        detect_format(link)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(ImageRejected, match="not a regular file"):
        detect_format(fifo)


# --- inspect_untrusted: accepted ---------------------------------------------


@pytest.mark.parametrize("kind", ["qcow2", "vmdk", "vmdk_stream", "vdi", "raw_ext4", "raw_mbr"])
def test_inspects_accepted_images(samples: SampleImages, kind: str) -> None:
    path = getattr(samples, kind)
    info = inspect_untrusted(path, max_virtual_size=LIMIT)
    expected_size = MiB if kind == "raw_mbr" else 8 * MiB
    assert info.virtual_size == expected_size
    assert info.format == detect_format(path)
    assert info.backing_file is None
    assert info.actual_size > 0
    if kind == "qcow2":
        assert info.cluster_size == 65536


def test_virtual_size_limit_shows_both_sizes(tmp_path: Path) -> None:
    big = tmp_path / "big.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", str(big), "2G")
    with pytest.raises(ImageRejected) as err:
        inspect_untrusted(big, max_virtual_size=LIMIT, name="the upload")
    assert "2 GiB" in err.value.message and "1 GiB" in err.value.message
    assert err.value.hint and "limit" in err.value.hint


@pytest.mark.parametrize("fmt", ["vmdk", "vdi", "raw"])
def test_virtual_size_limit_applies_to_every_format(tmp_path: Path, fmt: str) -> None:
    big = tmp_path / f"big.{fmt}"
    if fmt == "raw":
        big.write_bytes(b"")
        with big.open("r+b") as f:
            f.truncate(3 * MiB)
            f.seek(510)
            f.write(b"\x55\xaa")
    else:
        qemu_img("create", "-q", "-f", fmt, str(big), "3M")
    with pytest.raises(ImageRejected, match=r"3 MiB, above the limit of 2 MiB"):
        inspect_untrusted(big, max_virtual_size=2 * MiB)


# --- inspect_untrusted: refused ---------------------------------------------


def test_refuses_a_qcow2_with_a_backing_file(tmp_path: Path, samples: SampleImages) -> None:
    overlay = tmp_path / "overlay.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(samples.qcow2), str(overlay))
    with pytest.raises(ImageRejected) as err:
        inspect_untrusted(overlay, max_virtual_size=LIMIT, name="the upload")
    assert "backing file" in err.value.message and str(samples.qcow2) in err.value.message
    assert err.value.hint and "qemu-img convert" in err.value.hint


def test_refuses_a_qcow2_backed_by_etc_shadow(tmp_path: Path) -> None:
    evil = tmp_path / "evil.qcow2"
    qemu_img("create", "-q", "-u", "-f", "qcow2", "-F", "raw", "-b", "/etc/shadow", str(evil), "1M")
    with pytest.raises(ImageRejected, match=r"names a backing file \('/etc/shadow'\)"):
        inspect_untrusted(evil, max_virtual_size=LIMIT)


def test_refuses_a_raw_upload_that_is_really_a_qcow2_with_backing(tmp_path: Path) -> None:
    """CVE-2015-5162 style: detection by our magic check, never by qemu-img probing."""
    evil = tmp_path / "disk.raw"
    qemu_img("create", "-q", "-u", "-f", "qcow2", "-F", "raw", "-b", "/etc/passwd", str(evil), "1M")
    assert detect_format(evil) == "qcow2"
    with pytest.raises(ImageRejected, match="backing file"):
        inspect_untrusted(evil, max_virtual_size=LIMIT)


def test_refuses_a_qcow2_with_an_external_data_file_without_opening_it(tmp_path: Path) -> None:
    evil = tmp_path / "datafile.qcow2"
    data = tmp_path / "data.raw"
    qemu_img(
        "create", "-q", "-f", "qcow2", "-o", f"data_file={data},data_file_raw=on", str(evil), "1M"
    )
    data.unlink()
    os.mkfifo(data)  # opening it for reading would block: qemu-img must never get there
    started = time.monotonic()
    with pytest.raises(ImageRejected, match="external data file"):
        inspect_untrusted(evil, max_virtual_size=LIMIT)
    assert time.monotonic() - started < 5


def test_refuses_a_vmdk_descriptor_pointing_at_another_file(
    tmp_path: Path, samples: SampleImages
) -> None:
    desc = tmp_path / "evil.vmdk"
    desc.write_text(
        "# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n"
        'createType="monolithicFlat"\n\n'
        f'RW 2048 FLAT "{samples.secret}" 0\n'
    )
    with pytest.raises(ImageRejected) as err:
        inspect_untrusted(desc, max_virtual_size=LIMIT, name="the upload")
    assert "VMDK descriptor file" in err.value.message
    assert err.value.hint and "self-contained" in err.value.hint


def test_refuses_a_sparse_vmdk_that_defers_to_its_embedded_descriptor(
    tmp_path: Path, samples: SampleImages
) -> None:
    """CVE-2022-47951: capacity 0 makes qemu follow the embedded descriptor's extents."""
    evil = vmdk_with_embedded_descriptor(
        samples.vmdk,
        tmp_path / "cve.vmdk",
        b"# Disk DescriptorFile\nversion=1\nCID=fffffffe\nparentCID=ffffffff\n"
        b'createType="monolithicFlat"\n\nRW 2048 FLAT "' + str(samples.secret).encode() + b'" 0\n',
    )
    with pytest.raises(ImageRejected, match="CVE-2022-47951"):
        inspect_untrusted(evil, max_virtual_size=LIMIT)


def test_refuses_a_sparse_vmdk_whose_embedded_descriptor_names_a_parent(
    tmp_path: Path, samples: SampleImages
) -> None:
    data = bytearray(samples.vmdk.read_bytes())
    start = data.index(b"# Disk DescriptorFile")
    end = data.index(b"\0", start)
    text = bytes(data[start:end]).replace(
        b"parentCID=ffffffff", b'parentCID=12345678\nparentFileNameHint="/etc/shadow"'
    )
    data[start : start + len(text)] = text
    evil = tmp_path / "delta.vmdk"
    evil.write_bytes(bytes(data))
    with pytest.raises(ImageRejected, match="parent"):
        inspect_untrusted(evil, max_virtual_size=LIMIT)


def test_refuses_a_parent_hint_hidden_where_only_qemu_looks(
    tmp_path: Path, samples: SampleImages
) -> None:
    """qemu finds "parentFileNameHint" anywhere at 0x200, even in a comment line."""
    data = bytearray(samples.vmdk.read_bytes())
    start = data.index(b"# Disk DescriptorFile")
    end = data.index(b"\0", start)
    hidden = b'# parentFileNameHint="/etc/shadow"\n'
    data[end : end + len(hidden)] = hidden
    evil = tmp_path / "hidden.vmdk"
    evil.write_bytes(bytes(data))
    with pytest.raises(ImageRejected, match="parent"):
        inspect_untrusted(evil, max_virtual_size=LIMIT)


def test_refuses_a_truncated_qcow2(tmp_path: Path, samples: SampleImages) -> None:
    cut = tmp_path / "cut.qcow2"
    cut.write_bytes(samples.qcow2.read_bytes()[:1000])
    with pytest.raises(ImageRejected) as err:
        inspect_untrusted(cut, max_virtual_size=LIMIT, name="the upload")
    assert "truncated" in err.value.message and "1000 bytes" in err.value.message
    assert err.value.hint and "complete file" in err.value.hint


def test_refuses_a_qcow2_that_qemu_img_check_finds_corrupt(
    tmp_path: Path, samples: SampleImages
) -> None:
    bad = tmp_path / "bad.qcow2"
    shutil.copyfile(samples.qcow2, bad)
    info = qemu_img_info(bad, "qcow2")
    assert info["format"] == "qcow2"
    # Point the first L1 entry at the header cluster: the image is now self-overlapping.
    with bad.open("r+b") as f:
        f.seek(40)
        l1_offset = int.from_bytes(f.read(8), "big")
        f.seek(l1_offset)
        f.write((0x8000000000000000 | 0).to_bytes(8, "big"))
    with pytest.raises(ImageRejected) as err:
        inspect_untrusted(bad, max_virtual_size=LIMIT, name="the upload")
    assert "the upload" in err.value.message
    assert err.value.hint


def test_refuses_a_truncated_vdi(tmp_path: Path, samples: SampleImages) -> None:
    # qemu-img info and check both accept this file: our own header check must not.
    cut = tmp_path / "cut.vdi"
    cut.write_bytes(samples.vdi.read_bytes()[:600])
    with pytest.raises(ImageRejected, match="is truncated"):
        inspect_untrusted(cut, max_virtual_size=LIMIT)


def test_qemu_img_errors_on_uploads_are_rejections_without_server_paths(
    tmp_path: Path, samples: SampleImages
) -> None:
    bad = tmp_path / "l1.qcow2"
    data = bytearray(samples.qcow2.read_bytes())
    data[36:40] = (0).to_bytes(4, "big")  # l1_size = 0 for an 8 MiB disk
    bad.write_bytes(bytes(data))
    with pytest.raises(ImageRejected) as err:
        inspect_untrusted(bad, max_virtual_size=LIMIT, name="the upload")
    assert err.value.message == (
        "the upload is not a readable qcow2 image: "
        "qemu-img: Could not open 'the upload': L1 table is too small"
    )
    assert str(tmp_path) not in str(err.value)


def test_qemu_img_runs_under_limits_even_without_prlimit(
    monkeypatch: pytest.MonkeyPatch, samples: SampleImages
) -> None:
    real_which = shutil.which
    monkeypatch.setattr(
        shutil, "which", lambda name: None if name == "prlimit" else real_which(name)
    )
    assert inspect_untrusted(samples.qcow2, max_virtual_size=LIMIT).format == "qcow2"


def test_qemu_img_timeouts_become_tool_failed(samples: SampleImages) -> None:
    limits = qemu_img_mod.Limits(timeout_s=1e-6)
    with pytest.raises(qemu_img_mod.QemuImgFailed) as err:
        qemu_img_mod.run(["info", "-f", "qcow2", str(samples.qcow2)], limits=limits)
    assert err.value.timed_out and isinstance(err.value, ToolFailed)


def test_qemu_img_errors_carry_its_stderr(tmp_path: Path) -> None:
    with pytest.raises(ToolFailed, match="Could not open"):
        qemu_img_mod.run(
            ["info", "-f", "qcow2", str(tmp_path / "missing.qcow2")],
            limits=qemu_img_mod.INFO_LIMITS,
        )


# --- convert_to_qcow2 ---------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "fmt"),
    [
        ("qcow2", "qcow2"),
        ("vmdk", "vmdk"),
        ("vmdk_stream", "vmdk"),
        ("vdi", "vdi"),
        ("raw_ext4", "raw"),
    ],
)
def test_converts_to_qcow2_with_the_same_content(
    tmp_path: Path, samples: SampleImages, kind: str, fmt: str
) -> None:
    src = getattr(samples, kind)
    dst = tmp_path / "out.qcow2"
    convert_to_qcow2(src, fmt, dst)  # type: ignore[arg-type]
    info = qemu_img_info(dst, "qcow2")
    assert info["format"] == "qcow2" and "backing-filename" not in info
    assert info["virtual-size"] == 8 * MiB
    assert same_content(src, fmt, dst, "qcow2")
    assert same_content(samples.raw_ext4, "raw", dst, "qcow2")


def test_convert_rechecks_the_source_header(tmp_path: Path) -> None:
    evil = tmp_path / "evil.qcow2"
    qemu_img("create", "-q", "-u", "-f", "qcow2", "-F", "raw", "-b", "/etc/shadow", str(evil), "1M")
    with pytest.raises(ImageRejected, match="backing file"):
        convert_to_qcow2(evil, "qcow2", tmp_path / "out.qcow2")
    assert not (tmp_path / "out.qcow2").exists()


# --- overlays -----------------------------------------------------------------


@pytest.fixture
def base(tmp_path: Path, samples: SampleImages) -> Path:
    path = tmp_path / "cache" / "image.qcow2"
    path.parent.mkdir()
    shutil.copyfile(samples.qcow2, path)
    path.chmod(0o444)
    return path


def test_overlay_backs_onto_the_absolute_base_path(
    tmp_path: Path, base: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vm_dir = tmp_path / "vm"
    vm_dir.mkdir()
    monkeypatch.chdir(tmp_path)
    create_overlay(Path("cache/image.qcow2"), Path("vm/disk.qcow2"))
    overlay = vm_dir / "disk.qcow2"
    info = qemu_img_info(overlay, "qcow2")
    assert info["backing-filename"] == str(base)  # absolute, as written in the header
    assert info["backing-filename-format"] == "qcow2"
    assert info["virtual-size"] == 8 * MiB
    assert backing_file_of(overlay) == base
    assert backing_file_of(base) is None
    assert stat.S_IMODE(overlay.stat().st_mode) == 0o600
    assert [p.name for p in vm_dir.iterdir()] == ["disk.qcow2"]  # no temp file left


def test_writes_go_to_the_overlay_only(tmp_path: Path, base: Path) -> None:
    before = sha256(base)
    overlay = tmp_path / "disk.qcow2"
    create_overlay(base, overlay)
    subprocess.run(
        ["qemu-io", "-f", "qcow2", "-c", "write -P 0xab 0 64k", str(overlay)],
        check=True,
        capture_output=True,
    )
    read_back = subprocess.run(
        ["qemu-io", "-f", "qcow2", "-c", "read -P 0xab 0 64k", str(overlay)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "Pattern verification failed" not in read_back.stdout
    assert sha256(base) == before
    assert not same_content(base, "qcow2", overlay, "qcow2")


def test_overlay_can_grow_the_disk(tmp_path: Path, base: Path) -> None:
    overlay = tmp_path / "disk.qcow2"
    create_overlay(base, overlay, size_bytes=64 * MiB)
    assert virtual_size_of(overlay) == 64 * MiB
    assert virtual_size_of(base) == 8 * MiB


def test_overlay_smaller_than_the_image_is_refused(tmp_path: Path, base: Path) -> None:
    overlay = tmp_path / "disk.qcow2"
    with pytest.raises(InvalidInput) as err:
        create_overlay(base, overlay, size_bytes=4 * MiB)
    assert "4 MiB" in err.value.message and "8 MiB" in err.value.message
    assert err.value.hint and "at least 8 MiB" in err.value.hint
    assert not overlay.exists()


def test_overlay_never_overwrites_an_existing_disk(tmp_path: Path, base: Path) -> None:
    overlay = tmp_path / "disk.qcow2"
    overlay.write_bytes(b"precious")
    with pytest.raises(Conflict, match="already exists"):
        create_overlay(base, overlay)
    assert overlay.read_bytes() == b"precious"


def test_overlay_needs_a_qcow2_base(tmp_path: Path, samples: SampleImages) -> None:
    with pytest.raises(InvalidInput, match="not a qcow2"):
        create_overlay(samples.raw_ext4, tmp_path / "disk.qcow2")
    with pytest.raises(NotFound):
        create_overlay(tmp_path / "missing.qcow2", tmp_path / "disk.qcow2")


def test_format_size() -> None:
    assert format_size(0) == "0 B"
    assert format_size(512) == "512 B"
    assert format_size(1024) == "1 KiB"
    assert format_size(1536 * MiB) == "1.5 GiB"
    assert format_size(100 * GiB) == "100 GiB"
