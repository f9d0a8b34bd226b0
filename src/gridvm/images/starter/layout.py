"""The file trees of the initramfs and of the root disk, staged in a directory.

Both trees are laid out on the host first and then packed without mounting
anything (cpio for the initramfs, ``mkfs.ext4 -d`` for the root disk).
Timestamps are set to one fixed value so that the packed images depend only
on the inputs.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path

from .kmod import ModuleTree, modules_dep, read_module
from .tools import run

GUEST_PACKAGE = "gridvm.images.starter.guest"

# Guest files shipped in the package: source name -> (path in the tree, mode).
INITRAMFS_FILES: Mapping[str, tuple[str, int]] = {
    "initramfs.init": ("init", 0o755),
}
ROOTFS_FILES: Mapping[str, tuple[str, int]] = {
    "rootfs.init": ("sbin/init", 0o755),
    "shutdown.sh": ("sbin/gridvm-shutdown", 0o755),
    "power-button.sh": ("etc/acpi/PWRF/00000080", 0o755),
    "udhcpc.sh": ("etc/udhcpc/default.script", 0o755),
    "profile.sh": ("etc/profile", 0o644),
    "gridvm-guest.sh": ("usr/bin/gridvm-guest", 0o755),
}

# Small configuration files written as text: path -> (content, mode).
ROOTFS_TEXT: Mapping[str, tuple[str, int]] = {
    "etc/passwd": (
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        0o644,
    ),
    "etc/group": ("root:x:0:\nnogroup:x:65534:\n", 0o644),
    "etc/shadow": ("root:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n", 0o600),
    "etc/hostname": ("tiny\n", 0o644),
    "etc/hosts": ("127.0.0.1\tlocalhost\n", 0o644),
    "etc/resolv.conf": ("", 0o644),
    "etc/shells": ("/bin/sh\n/bin/ash\n", 0o644),
}
ROOTFS_SYMLINKS: Mapping[str, str] = {
    "etc/mtab": "/proc/mounts",
    "var/run": "/run",
}
ROOTFS_DIRS: Mapping[str, int] = {
    "dev": 0o755,
    "proc": 0o555,
    "sys": 0o555,
    "run": 0o755,
    "mnt": 0o755,
    "root": 0o700,
    "tmp": 0o1777,
    "var/log": 0o755,
    "var/tmp": 0o1777,
}
INITRAMFS_DIRS: Mapping[str, int] = {"dev": 0o755, "proc": 0o555, "sys": 0o555, "newroot": 0o755}

# Applets that would clash with our own init.
_SKIPPED_APPLETS = frozenset({"init", "linuxrc"})

# The file listing the modules /init or /sbin/init loads with insmod, in order.
LOAD_LIST = "gridvm.load"


def guest_file(name: str) -> bytes:
    """Contents of a guest-side file shipped in this package."""
    return resources.files(GUEST_PACKAGE).joinpath(name).read_bytes()


def write_file(root: Path, relative: str, content: bytes, mode: int) -> None:
    """Write ``root/relative`` with ``mode``, creating parent directories."""
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    path.chmod(mode)


def make_dirs(root: Path, dirs: Mapping[str, int]) -> None:
    """Create directories with their modes (chmod, so the umask does not matter)."""
    for relative, mode in dirs.items():
        path = root / relative
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(mode)


def install_guest_files(root: Path, files: Mapping[str, tuple[str, int]]) -> None:
    """Copy the package's guest files into the tree."""
    for source, (relative, mode) in files.items():
        write_file(root, relative, guest_file(source), mode)


def install_busybox(busybox: Path, root: Path) -> None:
    """busybox as /bin/busybox plus a symlink for each applet at its usual path.

    The applet list comes from the binary itself (``--list-full``); it is the
    guest's amd64 binary, which the amd64 build host can run.
    """
    write_file(root, "bin/busybox", busybox.read_bytes(), 0o755)
    for line in run([busybox, "--list-full"], timeout=60).splitlines():
        relative = line.strip().lstrip("/")
        if not relative or Path(relative).name in _SKIPPED_APPLETS:
            continue
        link = root / relative
        if link.exists() or link.is_symlink():
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to("/bin/busybox")


def install_modules(
    tree: ModuleTree, root: Path, included: Iterable[str], to_load: Iterable[str]
) -> None:
    """Put modules under lib/modules/<version>, with the insmod list and a modules.dep.

    ``included`` are copied (uncompressed); ``to_load`` is what the guest
    script loads at boot, in order.
    """
    modules_root = f"lib/modules/{tree.version}"
    included = list(included)
    for name in included:
        content = read_module(tree.files[name])
        write_file(root, f"{modules_root}/{tree.image_path(name)}", content, 0o644)
    load_list = "".join(f"{tree.image_path(name)}\n" for name in to_load)
    write_file(root, f"{modules_root}/{LOAD_LIST}", load_list.encode(), 0o644)
    write_file(root, f"{modules_root}/modules.dep", modules_dep(tree, included).encode(), 0o644)


def finalize_tree(root: Path, dir_modes: Mapping[str, int], epoch: int) -> None:
    """Make the tree independent of the builder's umask and clock.

    Directories not listed in ``dir_modes`` become 0755; every entry (symlinks
    included) gets ``epoch`` as its mtime and atime.
    """
    for directory, subdirs, files in os.walk(root):
        for name in subdirs:
            path = Path(directory) / name
            if path.is_symlink():  # e.g. var/run -> /run: never touch the host's target
                continue
            path.chmod(dir_modes.get(path.relative_to(root).as_posix(), 0o755))
        for name in [*subdirs, *files]:
            os.utime(Path(directory) / name, (epoch, epoch), follow_symlinks=False)
    root.chmod(0o755)
    os.utime(root, (epoch, epoch))


def stage_initramfs(
    root: Path, busybox: Path, tree: ModuleTree, modules: list[str], epoch: int
) -> None:
    """The initramfs tree: busybox, /init, and the modules that reach the root disk."""
    make_dirs(root, INITRAMFS_DIRS)
    install_busybox(busybox, root)
    install_guest_files(root, INITRAMFS_FILES)
    install_modules(tree, root, modules, modules)
    finalize_tree(root, INITRAMFS_DIRS, epoch)


def stage_rootfs(
    root: Path,
    busybox: Path,
    tree: ModuleTree,
    included: list[str],
    to_load: list[str],
    epoch: int,
) -> None:
    """The root disk tree: busybox, the guest init and scripts, modules, /etc."""
    make_dirs(root, ROOTFS_DIRS)
    install_busybox(busybox, root)
    install_guest_files(root, ROOTFS_FILES)
    for relative, (text, mode) in ROOTFS_TEXT.items():
        write_file(root, relative, text.encode(), mode)
    for relative, target in ROOTFS_SYMLINKS.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).symlink_to(target)
    install_modules(tree, root, included, to_load)
    finalize_tree(root, ROOTFS_DIRS, epoch)


def copy_file(source: Path, dest: Path, mode: int = 0o644) -> None:
    """Copy a file's bytes (not its metadata) and set ``mode``."""
    shutil.copyfile(source, dest)
    dest.chmod(mode)
