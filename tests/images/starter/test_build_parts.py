"""Unit tests of the image build's pure parts (no QEMU, no apt, no root)."""

from __future__ import annotations

import gzip
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from gridvm.common.errors import InvalidInput
from gridvm.images.starter import TinyManifest, load_manifest, module_load_order
from gridvm.images.starter.cpio import DeviceNode, write_initramfs
from gridvm.images.starter.kmod import ModuleError, module_name
from gridvm.images.starter.packages import DebPackage, parse_stanzas, versioned_kernel_spec

# The real dependencies of the modules the tiny image loads (Debian 6.1 cloud kernel).
CLOUD_KERNEL_DEPENDS = {
    "virtio_ring": [],
    "virtio": ["virtio_ring"],
    "virtio_pci_modern_dev": [],
    "virtio_pci_legacy_dev": [],
    "virtio_pci": ["virtio_ring", "virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio"],
    "virtio_blk": ["virtio", "virtio_ring"],
    "failover": [],
    "net_failover": ["failover"],
    "virtio_net": ["virtio_ring", "virtio", "net_failover"],
    "cdrom": [],
    "isofs": ["cdrom"],
}


def test_load_order_puts_dependencies_first_once() -> None:
    order = module_load_order(["virtio_pci", "virtio_blk"], CLOUD_KERNEL_DEPENDS)

    assert order == [
        "virtio_ring",
        "virtio_pci_modern_dev",
        "virtio_pci_legacy_dev",
        "virtio",
        "virtio_pci",
        "virtio_blk",
    ]


def test_load_order_respects_every_dependency() -> None:
    wanted = ["isofs", "virtio_net", "virtio_blk", "virtio_pci"]
    order = module_load_order(wanted, CLOUD_KERNEL_DEPENDS)

    assert len(order) == len(set(order))
    assert set(wanted) <= set(order)
    for module in order:
        for dependency in CLOUD_KERNEL_DEPENDS[module]:
            assert order.index(dependency) < order.index(module)


def test_load_order_accepts_file_names_and_dashes() -> None:
    depends = {"crc32c_intel": [], "btrfs_like": ["crc32c_intel"]}

    assert module_load_order(["btrfs-like.ko"], depends) == ["crc32c_intel", "btrfs_like"]
    assert module_name("crc32c-intel.ko.xz") == "crc32c_intel"


def test_load_order_reports_missing_module_and_who_needs_it() -> None:
    with pytest.raises(ModuleError, match=re.escape("virtio_ring not found (needed by virtio)")):
        module_load_order(["virtio"], {"virtio": ["virtio_ring"]})


def test_load_order_reports_cycles() -> None:
    with pytest.raises(ModuleError, match=re.escape("cycle: a -> b -> a")):
        module_load_order(["a"], {"a": ["b"], "b": ["a"]})


def test_versioned_kernel_comes_from_metapackage_depends() -> None:
    stanzas = parse_stanzas(
        "Package: linux-image-cloud-amd64\n"
        "Version: 6.1.192-2\n"
        "Depends: linux-image-6.1.0-56-cloud-amd64 (= 6.1.192-2)\n"
        "Description: meta\n continued\n"
        "SHA256: 00be\n"
        "\n"
        "Package: busybox-static\nVersion: 1:1.35.0-4\nSHA256: 3d3f\n"
    )
    assert [stanza["Package"] for stanza in stanzas] == [
        "linux-image-cloud-amd64",
        "busybox-static",
    ]
    fields = stanzas[0]
    meta = DebPackage(fields["Package"], fields["Version"], "amd64", "00be", fields["Depends"])

    assert versioned_kernel_spec(meta) == "linux-image-6.1.0-56-cloud-amd64=6.1.192-2"
    busybox = DebPackage("busybox-static", "1:1.35.0-4", "amd64", "3d3f", "")
    assert busybox.file_name == "busybox-static_1%3a1.35.0-4_amd64.deb"


def _manifest() -> TinyManifest:
    return TinyManifest(
        name="tiny",
        kernel_cmdline="console=ttyS0 no_timer_check panic=-1",
        kernel_version="6.1.0-56-cloud-amd64",
        busybox_version="1:1.35.0-4+deb12u1+b1",
        inputs_sha256="ab" * 32,
        disk="disk.qcow2",
        kernel="vmlinuz",
        initrd="initrd.img",
        os="busybox",
        min_memory_mb=128,
    )


def test_manifest_round_trip(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text(_manifest().to_json())

    assert load_manifest(tmp_path) == _manifest()


@pytest.mark.parametrize(
    ("key", "value"),
    [("min_memory_mb", "128"), ("disk", "../../etc/passwd"), ("kernel", None)],
)
def test_manifest_rejects_bad_fields(tmp_path: Path, key: str, value: object) -> None:
    data = json.loads(_manifest().to_json())
    data[key] = value
    (tmp_path / "manifest.json").write_text(json.dumps(data))

    with pytest.raises(InvalidInput):
        load_manifest(tmp_path)


@pytest.mark.skipif(shutil.which("cpio") is None, reason="needs the cpio tool")
def test_initramfs_is_reproducible_newc_with_console_node(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "bin").mkdir(parents=True)
    (tree / "dev").mkdir()
    (tree / "init").write_text("#!/bin/sh\n")
    (tree / "bin" / "sh").symlink_to("/bin/busybox")
    console = DeviceNode("dev/console", 5, 1)
    first, second = tmp_path / "a.img", tmp_path / "b.img"

    write_initramfs(tree, [console], first, mtime=1_700_000_000)
    (tree / "init").touch()  # a different mtime on the host changes nothing
    write_initramfs(tree, [console], second, mtime=1_700_000_000)

    assert first.read_bytes() == second.read_bytes()
    listing = subprocess.run(
        ["cpio", "-t", "-v", "--quiet"],
        input=gzip.decompress(first.read_bytes()),
        capture_output=True,
        check=True,
        timeout=30,
    ).stdout.decode()
    names = [line.split()[-1] for line in listing.splitlines()]
    assert "init" in names and "dev" in names and "/bin/busybox" in names
    console_line = next(line for line in listing.splitlines() if "dev/console" in line)
    assert console_line.startswith("crw-------") and "5," in console_line
