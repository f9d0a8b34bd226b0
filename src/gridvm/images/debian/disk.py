"""One Debian root disk: mmdebstrap with gridvm's guest integration, then ext4 in qcow2.

Used for the site template ``debian-12-minimal`` and for every recipe build
(which adds its packages, files and ``run`` commands through extra hooks).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .guest_layout import customize_script, stage_guest_tree
from .mmdebstrap import Hook, HookKind, Mode, RootSpec, mmdebstrap_argv
from .rootfs import (
    LogLine,
    bootstrap_failure,
    check_tools,
    disk_size_mib,
    run_logged,
    tree_size,
    tree_to_qcow2,
    unpack_tar,
)

MIN_DISK_MIB = 2048
BOOTSTRAP_TIMEOUT_S = 1800.0


@dataclass(frozen=True)
class DiskResult:
    qcow2: Path
    content_bytes: int
    size_mib: int


def write_script(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o755)
    return path


def build_disk(
    spec: RootSpec,
    modules_dir: Path,
    work: Path,
    qcow2: Path,
    log: LogLine,
    *,
    extra_hooks: Sequence[Hook] = (),
    first_hooks: Sequence[Hook] = (),
    skip: Sequence[str] = (),
    mode: Mode = Mode.unshare,
    fs_uuid: str | None = None,
    env: dict[str, str] | None = None,
    failure: Callable[[list[str]], str] = bootstrap_failure,
    cancel: threading.Event | None = None,
) -> DiskResult:
    """Build the root disk of ``spec`` into ``qcow2`` (``work`` is an empty scratch dir).

    ``modules_dir`` is the kernel's ``lib/modules/<version>`` the guest boots with;
    ``extra_hooks`` run after the guest integration is in place; ``first_hooks`` (e.g.
    the package cache's) before it, ``skip`` names mmdebstrap steps not to run.
    """
    check_tools()
    stage = work / "guest"
    stage_guest_tree(stage, modules_dir)
    customize = write_script(work / "gridvm-customize", customize_script(modules_dir.name))
    hooks = [
        *first_hooks,
        Hook(HookKind.customize, sync_in=stage),
        Hook(HookKind.customize, script=customize),
        *extra_hooks,
    ]
    tar = work / "root.tar"
    argv = mmdebstrap_argv(spec, tar, mode=mode, hooks=hooks, skip=skip)
    log("$ " + " ".join(argv))
    run_logged(argv, log, timeout=BOOTSTRAP_TIMEOUT_S, env=env, failure=failure, cancel=cancel)
    tree = work / "root"
    log("I: unpacking the root file system")
    unpack_tar(tar, tree)
    tar.unlink()
    content = tree_size(tree)
    size = disk_size_mib(content, MIN_DISK_MIB)
    log(f"I: making a {size} MiB ext4 file system ({content // (1024 * 1024)} MiB of files)")
    tree_to_qcow2(tree, work, qcow2, size, fs_uuid or str(uuid.uuid4()))
    return DiskResult(qcow2=qcow2, content_bytes=content, size_mib=size)
