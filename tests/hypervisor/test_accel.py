"""Accelerator detection: the override, the judgement, and a real probe."""

from __future__ import annotations

import os
import sys
import textwrap
import time
from pathlib import Path

import pytest

from gridvm.common.errors import InvalidInput
from gridvm.hypervisor import accel, probe_guest, procfs
from tests.hypervisor.conftest import needs_qemu


@pytest.fixture(autouse=True)
def _fresh_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(accel.ENV_OVERRIDE, raising=False)
    accel._detect_cached.cache_clear()


@pytest.fixture
def fake_kvm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    device = tmp_path / "kvm"
    device.write_bytes(b"")
    monkeypatch.setattr(accel, "KVM_DEVICE", device)
    return device


def fake_qemu(tmp_path: Path, body: str) -> str:
    """An executable that stands in for QEMU in the judgement tests (not a VM)."""
    script = tmp_path / "fake-qemu"
    script.write_text(f"#!{sys.executable}\n" + textwrap.dedent(body))
    script.chmod(0o755)
    return str(script)


@pytest.mark.parametrize("value", ["tcg", "kvm"])
def test_env_overrides_detection(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(accel.ENV_OVERRIDE, value)
    assert accel.detect_accelerator(qemu_binary="/nonexistent/qemu") == value


def test_bad_override_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(accel.ENV_OVERRIDE, "hvf")
    with pytest.raises(InvalidInput, match="GRIDVM_ACCEL"):
        accel.detect_accelerator()


def test_no_kvm_device_means_tcg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(accel, "KVM_DEVICE", tmp_path / "no-kvm")
    assert accel.detect_accelerator(qemu_binary="/nonexistent/qemu") == "tcg"
    assert "does not exist" in accel.probe_kvm().detail


def test_missing_qemu_means_tcg(fake_kvm: Path) -> None:
    probe = accel.probe_kvm(qemu_binary="/nonexistent/qemu")
    assert not probe.usable
    assert "cannot run" in probe.detail


def test_fast_probe_guest_means_kvm(tmp_path: Path, fake_kvm: Path) -> None:
    binary = fake_qemu(
        tmp_path,
        f"""
        import sys
        sys.stdout.write("SeaBIOS\\n{probe_guest.BEGIN_MARKER.decode()}\\n")
        sys.stdout.flush()
        sys.stdout.write("{probe_guest.DONE_MARKER.decode()}\\n")
    """,
    )
    probe = accel.probe_kvm(qemu_binary=binary, timeout=5.0)
    assert probe.usable, probe.detail
    assert accel.detect_accelerator(qemu_binary=binary) == "kvm"


def test_slow_probe_guest_means_tcg(tmp_path: Path, fake_kvm: Path) -> None:
    binary = fake_qemu(
        tmp_path,
        f"""
        import sys, time
        sys.stdout.write("{probe_guest.BEGIN_MARKER.decode()}\\n")
        sys.stdout.flush()
        time.sleep(0.5)
        sys.stdout.write("{probe_guest.DONE_MARKER.decode()}\\n")
    """,
    )
    probe = accel.run_probe_guest("kvm", qemu_binary=binary, timeout=5.0, work_budget=0.2)
    assert not probe.usable
    assert "too slowly" in probe.detail


def test_hanging_qemu_is_killed_at_the_timeout(tmp_path: Path, fake_kvm: Path) -> None:
    pid_file = tmp_path / "pid"
    binary = fake_qemu(
        tmp_path,
        f"""
        import os, time
        open("{pid_file}", "w").write(str(os.getpid()))
        time.sleep(60)
    """,
    )
    started = time.monotonic()
    assert accel.detect_accelerator(qemu_binary=binary, timeout=1.0) == "tcg"
    assert time.monotonic() - started < 3.0
    pid = int(pid_file.read_text())
    assert not Path(f"/proc/{pid}").exists(), "the probe left its QEMU running"


def test_failing_qemu_reports_its_message(tmp_path: Path, fake_kvm: Path) -> None:
    binary = fake_qemu(
        tmp_path,
        """
        import sys
        sys.stderr.write("qemu-system-x86_64: failed to initialize kvm: Permission denied\\n")
        sys.exit(1)
    """,
    )
    probe = accel.probe_kvm(qemu_binary=binary, timeout=5.0)
    assert not probe.usable
    assert "Permission denied" in probe.detail


def test_answer_is_cached(tmp_path: Path, fake_kvm: Path) -> None:
    counter = tmp_path / "runs"
    binary = fake_qemu(
        tmp_path,
        f"""
        with open("{counter}", "a") as f:
            f.write("x")
    """,
    )
    assert accel.detect_accelerator(qemu_binary=binary, timeout=2.0) == "tcg"
    assert accel.detect_accelerator(qemu_binary=binary, timeout=2.0) == "tcg"
    assert counter.read_text() == "x"


@pytest.mark.system
@needs_qemu
def test_probe_guest_runs_under_tcg() -> None:
    """The real probe guest reaches long mode, does its work and reports done."""
    probe = accel.run_probe_guest("tcg", timeout=20.0, work_budget=10.0)
    assert probe.usable, probe.detail


@pytest.mark.system
@needs_qemu
def test_detect_accelerator_on_this_host() -> None:
    """Answers within the timeout; agrees with an independent look at the probe.

    On the project's machines /dev/kvm exists but guests crawl under it, so
    the answer there is tcg (set GRIDVM_TEST_EXPECT_ACCEL to pin it).
    """
    timeout = 3.0
    started = time.monotonic()
    answer = accel.detect_accelerator(timeout=timeout)
    elapsed = time.monotonic() - started
    assert elapsed < timeout + 2.0
    expected = os.environ.get("GRIDVM_TEST_EXPECT_ACCEL")
    if expected:
        assert answer == expected
    if not Path("/dev/kvm").exists():
        assert answer == "tcg"
    started = time.monotonic()
    assert accel.detect_accelerator(timeout=timeout) == answer
    assert time.monotonic() - started < 0.1, "the answer was not cached"
    assert probe_processes() == []


def probe_processes() -> list[int]:
    """QEMUs still running a probe image (their argv names the probe's temp dir)."""
    found = []
    for entry in Path("/proc").iterdir():
        argv = procfs.read_cmdline(int(entry.name)) if entry.name.isdigit() else None
        if argv and argv[0].startswith("qemu-system") and "gridvm-kvm-probe-" in " ".join(argv):
            found.append(int(entry.name))
    return found
