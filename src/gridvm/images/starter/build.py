"""Building the ``tiny`` image: cache check, staging, atomic replacement.

The expensive part (download, unpack, mkfs, qcow2) only runs when the hash of
the inputs differs from the one in the existing manifest. The inputs are the
exact .deb files (name, version, SHA-256 from the package lists), the guest
scripts and this build code, so any change to what would end up in the image
triggers a rebuild, and nothing else does.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path

from gridvm.common.errors import InvalidInput, ToolFailed

from .cpio import DeviceNode, write_initramfs
from .disk import make_ext4, reset_metadata, to_qcow2, uuid_from_hash
from .kmod import ModuleTree
from .layout import (
    INITRAMFS_FILES,
    ROOTFS_FILES,
    copy_file,
    guest_file,
    stage_initramfs,
    stage_rootfs,
)
from .manifest import MANIFEST_NAME, TinyManifest, load_manifest
from .packages import (
    DebPackage,
    DownloadFailed,
    extract,
    fetch,
    resolve_inputs,
    update_package_lists,
)
from .tools import progress

IMAGE_NAME = "tiny"
# console on the first serial port; no_timer_check avoids rare panics when many
# TCG guests start at once; panic=-1 reboots at once, which -no-reboot turns
# into QEMU exiting; quiet keeps the console log to what the guest prints.
KERNEL_CMDLINE = "console=ttyS0 root=/dev/vda rootfstype=ext4 rw no_timer_check panic=-1 quiet"
DISK_SIZE_MIB = 256
MIN_MEMORY_MB = 128
# All timestamps in the image (2023-11-14): images depend on inputs, not on the clock.
BUILD_EPOCH = 1_700_000_000

# Loaded by the initramfs to reach the root disk.
INITRAMFS_MODULES = ("virtio_pci", "virtio_blk")
# Loaded by the guest init: seed ISO, network, console channel, entropy, power button.
RUNTIME_MODULES = ("isofs", "virtio_net", "virtio_console", "virtio_rng", "button", "evdev")

DISK_FILE = "disk.qcow2"
KERNEL_FILE = "vmlinuz"
INITRD_FILE = "initrd.img"
DEBS_DIR = ".debs"
_BUILD_PACKAGE = "gridvm.images.starter"


def inputs_sha256(packages: list[DebPackage]) -> str:
    """Hash of everything the image is made from."""
    digest = hashlib.sha256()

    def add(label: str, content: bytes) -> None:
        digest.update(f"{label}\0{len(content)}\0".encode())
        digest.update(content)

    for package in packages:
        add("package", package.identity().encode())
    for name in sorted([*INITRAMFS_FILES, *ROOTFS_FILES]):
        add(f"guest/{name}", guest_file(name))
    code = resources.files(_BUILD_PACKAGE)
    for entry in sorted(code.iterdir(), key=lambda item: item.name):
        if entry.name.endswith(".py"):
            add(f"code/{entry.name}", entry.read_bytes())
    return digest.hexdigest()


def is_up_to_date(image_dir: Path, inputs: str) -> bool:
    """True if ``image_dir`` holds a complete image built from ``inputs``."""
    try:
        manifest = load_manifest(image_dir)
    except InvalidInput:
        return False
    if manifest.inputs_sha256 != inputs:
        return False
    return all((image_dir / name).is_file() for name in manifest.file_names())


@contextlib.contextmanager
def build_lock(out_dir: Path, name: str = IMAGE_NAME) -> Iterator[None]:
    """Serialize builds of image ``name`` into the same directory (e.g. make and pytest at once)."""
    with (out_dir / f".{name}.lock").open("a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def remove_leftovers(out_dir: Path, name: str = IMAGE_NAME) -> None:
    """Delete staging directories of builds of ``name`` that were killed (call under the lock)."""
    for leftover in [*out_dir.glob(f".{name}-build-*"), *out_dir.glob(f".{name}-old-*")]:
        shutil.rmtree(leftover, ignore_errors=True)


def replace_dir(new: Path, target: Path) -> None:
    """Put the finished ``new`` at ``target``; a reader sees the old or the new image.

    Between the two renames ``target`` is briefly missing, never half-written.
    """
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}-old-", dir=target.parent))
    if target.exists():
        target.rename(old / target.name)
    new.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def _modules_dir(kernel_root: Path) -> Path:
    candidates = sorted(
        [*kernel_root.glob("lib/modules/*"), *kernel_root.glob("usr/lib/modules/*")]
    )
    if len(candidates) != 1:
        raise ToolFailed(
            f"expected one kernel module directory in the kernel package, found {candidates}"
        )
    return candidates[0]


def _build_into(
    dest: Path, work: Path, packages: list[DebPackage], inputs: str, debs: Path
) -> None:
    """Build every file of the image into the empty directory ``dest``."""
    _metapackage, kernel_package, busybox_package = packages  # the metapackage holds no files
    kernel_deb, busybox_deb = fetch(kernel_package, debs), fetch(busybox_package, debs)
    progress(f"extracting {kernel_package.name} and {busybox_package.name}")
    kernel_root = extract(kernel_deb, work / "kernel")
    busybox = extract(busybox_deb, work / "busybox") / "bin" / "busybox"
    modules = ModuleTree.scan(_modules_dir(kernel_root))
    vmlinuz = kernel_root / "boot" / f"vmlinuz-{modules.version}"

    early = modules.load_order(INITRAMFS_MODULES)
    late = [name for name in modules.load_order(RUNTIME_MODULES) if name not in early]
    progress(f"writing initramfs ({len(early)} modules: {' '.join(early)})")
    stage_initramfs(work / "initramfs", busybox, modules, early, BUILD_EPOCH)
    console = DeviceNode("dev/console", major=5, minor=1)
    write_initramfs(work / "initramfs", [console], dest / INITRD_FILE, BUILD_EPOCH)

    progress(
        f"making the ext4 root file system ({DISK_SIZE_MIB} MiB, {len(late)} run-time modules)"
    )
    rootfs = work / "rootfs"
    stage_rootfs(rootfs, busybox, modules, [*early, *late], late, BUILD_EPOCH)
    raw = work / "disk.raw"
    make_ext4(rootfs, raw, DISK_SIZE_MIB, uuid_from_hash(inputs), BUILD_EPOCH)
    reset_metadata(rootfs, raw, BUILD_EPOCH)
    progress("converting the root disk to compressed qcow2")
    to_qcow2(raw, dest / DISK_FILE)
    copy_file(vmlinuz, dest / KERNEL_FILE)

    manifest = TinyManifest(
        name=IMAGE_NAME,
        kernel_cmdline=KERNEL_CMDLINE,
        kernel_version=modules.version,
        busybox_version=busybox_package.version,
        inputs_sha256=inputs,
        disk=DISK_FILE,
        kernel=KERNEL_FILE,
        initrd=INITRD_FILE,
        os="busybox",
        min_memory_mb=MIN_MEMORY_MB,
    )
    (dest / MANIFEST_NAME).write_text(manifest.to_json())


def build_staged(
    out_dir: Path,
    name: str,
    inputs: str,
    build: Callable[[Path, Path], None],
    *,
    force: bool,
    say: Callable[[str], None],
    started: float,
) -> Path:
    """``out_dir/name``, rebuilt unless it is up to date with ``inputs`` (or ``force``).

    ``build(dest, work)`` writes the image into the empty ``dest`` (``work`` is scratch
    space) in a staging directory under the build lock; the finished image replaces
    the old one whole. ``say`` reports progress; ``started`` is when the caller began.
    """
    image_dir = out_dir / name
    if not force and is_up_to_date(image_dir, inputs):
        say("up to date")
        return image_dir
    with build_lock(out_dir, name):
        if not force and is_up_to_date(image_dir, inputs):  # built while we waited
            say("up to date")
            return image_dir
        remove_leftovers(out_dir, name)
        staging = Path(tempfile.mkdtemp(prefix=f".{name}-build-", dir=out_dir))
        try:
            (staging / name).mkdir()
            (staging / "work").mkdir()
            build(staging / name, staging / "work")
            replace_dir(staging / name, image_dir)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    say(f"built {image_dir} in {time.monotonic() - started:.1f} s")
    return image_dir


def _build_if_needed(out_dir: Path, force: bool) -> Path:
    """Resolve the inputs and build unless the image is up to date (see build_tiny)."""
    started = time.monotonic()
    progress("resolving packages")
    packages = resolve_inputs()
    inputs = inputs_sha256(packages)
    return build_staged(
        out_dir,
        IMAGE_NAME,
        inputs,
        lambda dest, work: _build_into(dest, work, packages, inputs, out_dir / DEBS_DIR),
        force=force,
        say=progress,
        started=started,
    )


def build_tiny(out_dir: Path, force: bool = False) -> Path:
    """Build (or find up to date) the ``tiny`` image in ``out_dir/tiny`` and return that path.

    ``force`` rebuilds even when the existing image matches the inputs.
    Downloaded packages are kept in ``out_dir/.debs``. If a download fails
    (e.g. the mirror dropped a version the package lists still name), the
    lists are refreshed once and the packages resolved again.
    """
    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        return _build_if_needed(out_dir, force)
    except DownloadFailed as exc:
        progress(f"download failed ({exc.message})")
        update_package_lists()
        return _build_if_needed(out_dir, force)
