"""The site template ``debian-12-minimal``: Debian bookworm minbase + gridvm's guest.

Built by ``python -m gridvm.images.starter build --out DIR`` next to ``tiny``,
into ``DIR/debian-12-minimal/`` (``disk.qcow2``, ``vmlinuz``, ``initrd.img``,
``manifest.json``). Cached like tiny: rebuilt only when its inputs change (the
mirror, the suite, the package list, the guest integration, the kernel and
busybox packages, this code); the directory is replaced atomically.

Boot: direct kernel boot with Debian's cloud kernel (the same as tiny's) and a
busybox initramfs (tiny's ``/init``) that loads virtio_pci and virtio_blk and
switches to the ext4 root on /dev/vda, whose /sbin/init is systemd. The root
holds the kernel's whole module tree (with modules.dep), so udev loads
virtio_net, virtio_console, isofs, button, ... as devices appear.

The guest contract is tiny's (see :mod:`gridvm.images.starter`): the seed ISO
labelled cidata (hostname, SSH keys, VM token, launch files and secrets,
user-data run as root with the scan environment, results disk), the guest
channel (``gridvm-guest``), DHCP on every NIC (systemd-networkd), the markers
``gridvm-guest: ready`` / ``user-data exited with status N`` / ``results
written`` / ``power button pressed, shutting down`` on ttyS0, and the ACPI
power button for a clean power-off (acpid, then ``systemctl poweroff``).
Without user-data the serial console has a root shell.

The manifest's ``debian`` entry records how the root was made (suite, mirror,
variant, packages, kernel package): the recipe builder starts from it.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import uuid
from importlib import resources
from pathlib import Path
from typing import Any

from gridvm.common.errors import InvalidInput, ToolFailed
from gridvm.images.starter.build import (
    BUILD_EPOCH,
    DEBS_DIR,
    DISK_FILE,
    INITRAMFS_MODULES,
    INITRD_FILE,
    KERNEL_FILE,
    _modules_dir,
    build_staged,
)
from gridvm.images.starter.cpio import DeviceNode, write_initramfs
from gridvm.images.starter.kmod import ModuleTree
from gridvm.images.starter.layout import INITRAMFS_FILES, copy_file, stage_initramfs
from gridvm.images.starter.layout import guest_file as tiny_guest_file
from gridvm.images.starter.manifest import MANIFEST_NAME
from gridvm.images.starter.packages import DebPackage, extract, fetch, resolve_inputs

from .apt_cache import SKIP, AptCache, CachedBuild, host_architecture
from .disk import build_disk
from .guest_layout import BASE_PACKAGES, inputs_digest
from .mmdebstrap import DEFAULT_MIRROR, DEFAULT_SUITE, PackageSpec, RootSpec, validate_mirror

IMAGE_NAME = "debian-12-minimal"
OS_NAME = "debian-12"
MIRROR_ENV = "GRIDVM_DEBIAN_MIRROR"
KERNEL_CMDLINE = (
    "console=ttyS0 root=/dev/vda rootfstype=ext4 rw no_timer_check panic=-1 quiet "
    "systemd.show_status=error"
)
MIN_MEMORY_MB = 256
_CODE_PACKAGE = "gridvm.images.debian"
# The build code the template depends on (recipe builds' own code is not part of it).
TEMPLATE_CODE = ("disk.py", "guest_layout.py", "mmdebstrap.py", "rootfs.py", "template.py")


APT_CACHE_DIR = ".apt-cache"
APT_CACHE_MAX_MIB = 1024


def progress(message: str) -> None:
    print(f"{IMAGE_NAME}: {message}", file=sys.stderr, flush=True)


def configured_mirror(mirror: str | None = None) -> str:
    """The build option, else $GRIDVM_DEBIAN_MIRROR, else deb.debian.org."""
    return validate_mirror(mirror or os.environ.get(MIRROR_ENV) or DEFAULT_MIRROR)


def template_spec(mirror: str) -> RootSpec:
    return RootSpec(
        suite=DEFAULT_SUITE,
        mirror=mirror,
        variant="minbase",
        packages=tuple(PackageSpec.parse(name) for name in BASE_PACKAGES),
    )


def inputs_sha256(spec: RootSpec, packages: list[DebPackage]) -> str:
    digest = hashlib.sha256()

    def add(label: str, content: bytes) -> None:
        digest.update(f"{label}\0{len(content)}\0".encode())
        digest.update(content)

    add("spec", json.dumps(spec_record(spec), sort_keys=True).encode())
    add("guest", inputs_digest().encode())
    add("cmdline", KERNEL_CMDLINE.encode())
    for package in packages:
        add("package", package.identity().encode())
    for name in sorted(INITRAMFS_FILES):
        add(f"initramfs/{name}", tiny_guest_file(name))
    add("initramfs/debian-init", debian_initramfs_init())
    code = resources.files(_CODE_PACKAGE)
    for name in TEMPLATE_CODE:
        add(f"code/{name}", code.joinpath(name).read_bytes())
    return digest.hexdigest()


def spec_record(spec: RootSpec) -> dict[str, Any]:
    """How a root was made, as the manifest (and the recipe builder) records it."""
    return {
        "suite": spec.suite,
        "mirror": spec.mirror,
        "variant": spec.variant,
        "components": list(spec.components),
        "packages": [str(package) for package in spec.packages],
    }


def spec_from_record(record: dict[str, Any]) -> RootSpec:
    try:
        return RootSpec(
            suite=str(record["suite"]),
            mirror=str(record["mirror"]),
            variant=str(record["variant"]),
            components=tuple(str(c) for c in record["components"]),
            packages=tuple(PackageSpec.parse(str(p)) for p in record["packages"]),
        ).validated()
    except (KeyError, TypeError) as exc:
        raise InvalidInput(f"the template's build record is incomplete: {exc}") from exc


def debian_initramfs_init() -> bytes:
    """tiny's /init, accepting a root whose /sbin/init is an absolute symlink (systemd)."""
    text = tiny_guest_file("initramfs.init").decode()
    check = "[ -x /newroot/sbin/init ] ||"
    if check not in text:
        raise ToolFailed("initramfs.init changed shape: update the Debian adaptation")
    return text.replace(check, "[ -x /newroot/sbin/init ] || [ -L /newroot/sbin/init ] ||").encode()


def kernel_and_initramfs(
    packages: list[DebPackage], debs: Path, work: Path, dest: Path
) -> tuple[Path, str]:
    """Write vmlinuz and initrd.img into ``dest``; return the module directory and version."""
    _meta, kernel_package, busybox_package = packages
    kernel_root = extract(fetch(kernel_package, debs), work / "kernel")
    busybox = extract(fetch(busybox_package, debs), work / "busybox") / "bin" / "busybox"
    modules_dir = _modules_dir(kernel_root)
    modules = ModuleTree.scan(modules_dir)
    early = modules.load_order(INITRAMFS_MODULES)
    stage_initramfs(work / "initramfs", busybox, modules, early, BUILD_EPOCH)
    init = work / "initramfs" / "init"
    init.write_bytes(debian_initramfs_init())
    os.utime(init, (BUILD_EPOCH, BUILD_EPOCH))
    console = DeviceNode("dev/console", major=5, minor=1)
    write_initramfs(work / "initramfs", [console], dest / INITRD_FILE, BUILD_EPOCH)
    copy_file(kernel_root / "boot" / f"vmlinuz-{modules.version}", dest / KERNEL_FILE)
    return modules_dir, modules.version


def _build_into(
    dest: Path, work: Path, spec: RootSpec, packages: list[DebPackage], inputs: str, debs: Path
) -> None:
    progress("kernel and initramfs")
    modules_dir, kernel_version = kernel_and_initramfs(packages, debs, work, dest)
    progress(f"mmdebstrap {spec.suite} from {spec.mirror}")
    (work / "disk").mkdir()
    # The .debs of the last builds (out_dir/.apt-cache): a rebuild downloads only what changed.
    cache = AptCache(debs.parent / APT_CACHE_DIR, APT_CACHE_MAX_MIB * 2**20)
    cached = CachedBuild.prepare(cache, spec, host_architecture(), work)

    def log(line: str) -> None:
        if line.startswith(("I:", "E:", "W:", "gridvm-build: ")):
            progress(line)

    result = build_disk(
        spec,
        modules_dir,
        work / "disk",
        dest / DISK_FILE,
        log,
        fs_uuid=str(uuid.UUID(hex=inputs[:32])),
        first_hooks=cached.hooks(),
        skip=SKIP,
    )
    log(cached.use().log_line())
    cached.fill(log)
    _meta, kernel_package, busybox_package = packages
    manifest = {
        "name": IMAGE_NAME,
        "kernel_cmdline": KERNEL_CMDLINE,
        "kernel_version": kernel_version,
        "busybox_version": busybox_package.version,
        "inputs_sha256": inputs,
        "disk": DISK_FILE,
        "kernel": KERNEL_FILE,
        "initrd": INITRD_FILE,
        "os": OS_NAME,
        "min_memory_mb": MIN_MEMORY_MB,
        "debian": {
            **spec_record(spec),
            "kernel_package": f"{kernel_package.name}={kernel_package.version}",
            "disk_mib": result.size_mib,
        },
    }
    (dest / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")


def build_debian_minimal(out_dir: Path, *, mirror: str | None = None, force: bool = False) -> Path:
    """Build (or find up to date) ``out_dir/debian-12-minimal`` and return its path."""
    started = time.monotonic()
    out_dir = out_dir.resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    spec = template_spec(configured_mirror(mirror))
    packages = resolve_inputs()
    inputs = inputs_sha256(spec, packages)
    return build_staged(
        out_dir,
        IMAGE_NAME,
        inputs,
        lambda dest, work: _build_into(dest, work, spec, packages, inputs, out_dir / DEBS_DIR),
        force=force,
        say=progress,
        started=started,
    )


def load_build_record(image_dir: Path) -> tuple[RootSpec, str]:
    """The root spec and kernel package (``name=version``) a Debian template was built from."""
    try:
        data = json.loads((image_dir / MANIFEST_NAME).read_text())
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"cannot read the manifest of {image_dir.name}: {exc}") from exc
    record = data.get("debian") if isinstance(data, dict) else None
    if not isinstance(record, dict):
        raise InvalidInput(f"{image_dir.name} was not built from a Debian recipe")
    return spec_from_record(record), str(record.get("kernel_package", ""))
