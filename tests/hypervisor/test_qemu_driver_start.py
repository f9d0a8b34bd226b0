"""Start failures that need no real QEMU: a stand-in binary that hangs or dies mutely."""

from __future__ import annotations

import sys
import textwrap
import time
from pathlib import Path

import pytest

from gridvm.common.errors import HypervisorError
from gridvm.hypervisor.qemu_driver import QemuDriver
from gridvm.hypervisor.spec import MachineSpec


def stand_in(tmp_path: Path, body: str) -> str:
    script = tmp_path / "qemu-stand-in"
    script.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
    script.chmod(0o755)
    return str(script)


def spec_in(run_dir: Path) -> MachineSpec:
    return MachineSpec(
        vm_id="stand-in",
        vcpus=1,
        memory_mb=64,
        disk=run_dir / "disk.qcow2",
        accelerator="tcg",
        run_dir=run_dir,
        network="none",
    )


def test_start_that_hangs_times_out(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    binary = stand_in(
        tmp_path,
        f"""
        import os, time
        open("{pid_file}", "w").write(str(os.getpid()))
        time.sleep(60)
    """,
    )
    driver = QemuDriver(qemu_binary=binary, start_timeout=0.5)
    started = time.monotonic()
    with pytest.raises(HypervisorError, match=r"did not finish starting .* within 0.5 s"):
        driver.start(spec_in(tmp_path))
    assert time.monotonic() - started < 3.0
    assert not Path(f"/proc/{pid_file.read_text()}").exists()


def test_mute_failure_names_the_likely_cause(tmp_path: Path) -> None:
    binary = stand_in(tmp_path, "raise SystemExit(1)\n")
    with pytest.raises(HypervisorError, match=r"exit status 1 and no message.*seccomp"):
        QemuDriver(qemu_binary=binary).start(spec_in(tmp_path))


def test_success_without_a_pid_file_is_an_error(tmp_path: Path) -> None:
    binary = stand_in(tmp_path, "raise SystemExit(0)\n")
    with pytest.raises(HypervisorError, match="no live process is in its pid file"):
        QemuDriver(qemu_binary=binary).start(spec_in(tmp_path))
