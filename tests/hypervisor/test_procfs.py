"""Recognising processes through /proc."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from gridvm.hypervisor import procfs


def test_qemu_name_parsing() -> None:
    qemu = "/usr/bin/qemu-system-x86_64"
    assert procfs.qemu_name([qemu, "-name", "gridvm-a,process=gridvm-a"]) == "gridvm-a"
    assert procfs.qemu_name([qemu, "-name", "guest=gridvm-b,debug-threads=on"]) == "gridvm-b"
    assert procfs.qemu_name(["qemu-system-x86_64", "-m", "64"]) is None
    assert procfs.qemu_name(["qemu-system-x86_64", "-name"]) is None
    assert procfs.qemu_name(["/bin/grep", "-name", "gridvm-a"]) is None
    assert procfs.qemu_name([]) is None


def test_this_process_is_alive_and_not_qemu() -> None:
    assert procfs.is_alive(os.getpid())
    assert procfs.process_state(os.getpid()) in {"R", "S"}
    assert not procfs.is_qemu_named(os.getpid(), "gridvm-x")


def test_zombies_count_as_gone() -> None:
    child = subprocess.Popen(["true"])
    try:
        deadline = time.monotonic() + 5.0
        while procfs.process_state(child.pid) != "Z" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert procfs.process_state(child.pid) == "Z"
        assert not procfs.is_alive(child.pid)
        assert procfs.read_cmdline(child.pid) is None
    finally:
        child.wait()
    assert procfs.process_state(child.pid) is None


def test_read_pidfile(tmp_path: Path) -> None:
    path = tmp_path / "pid"
    assert procfs.read_pidfile(path) is None
    path.write_text("1234\n")
    assert procfs.read_pidfile(path) == 1234
    for junk in ("", "abc", "-5", "0"):
        path.write_text(junk)
        assert procfs.read_pidfile(path) is None
