"""The guest integration staged into every Debian root."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from gridvm.common.errors import ToolFailed
from gridvm.images.debian.guest_layout import customize_script, gridvm_guest_script
from gridvm.images.debian.template import debian_initramfs_init


def test_gridvm_guest_runs_under_bash_with_a_usleep(tmp_path: Path) -> None:
    script = gridvm_guest_script().decode()
    assert script.startswith("#!/bin/bash\n")
    path = tmp_path / "gridvm-guest"
    path.write_text(script)
    # Without a guest channel it says so (after parsing fine under bash).
    done = subprocess.run(["bash", str(path), "self"], capture_output=True, text=True)
    assert done.returncode == 1
    assert "no guest channel" in done.stderr
    shim = script.split("\nset -u\n", 1)[1].splitlines()[0]
    timed = subprocess.run(
        ["bash", "-c", f"{shim}\nusleep 100000 && echo slept"], text=True, capture_output=True
    )
    assert timed.stdout == "slept\n"


def test_customize_script_takes_only_a_plain_kernel_version() -> None:
    assert "depmod -a 6.1.0-56-cloud-amd64\n" in customize_script("6.1.0-56-cloud-amd64")
    with pytest.raises(ToolFailed):
        customize_script("6.1; reboot")


def test_initramfs_accepts_an_absolute_init_symlink() -> None:
    assert b"[ -L /newroot/sbin/init ]" in debian_initramfs_init()
