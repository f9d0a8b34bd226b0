"""Booting the tiny image in QEMU the way gridvm does, for the system tests.

Kept next to the tests (not in gridvm) on purpose: it is the tests' own,
independent idea of how the image must be started, built from the contract in
``gridvm.images.starter`` rather than from the code under test.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pycdlib
from qemu.qmp.legacy import QEMUMonitorProtocol

from gridvm.images.starter import TinyManifest, load_manifest

SEED_MIN_SIZE = 1 << 20
READY = "gridvm-guest: ready"
POWER_BUTTON = "gridvm-guest: power button pressed, shutting down"


def user_data_exited(status: int) -> str:
    return f"gridvm-guest: user-data exited with status {status}"


def make_seed_iso(path: Path, meta_data: str, user_data: str | None = None) -> Path:
    """A cloud-init NoCloud seed: ISO 9660 + Rock Ridge + Joliet, label cidata, >= 1 MiB."""
    files = {"meta-data": meta_data}
    if user_data is not None:
        files["user-data"] = user_data
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, joliet=3, rock_ridge="1.09", vol_ident="cidata")
    for name, text in files.items():
        data = text.encode()
        iso_name = "/" + name.replace("-", "").upper() + ".;1"
        iso.add_fp(io.BytesIO(data), len(data), iso_name, rr_name=name, joliet_path=f"/{name}")
    iso.write(str(path))
    iso.close()
    with path.open("r+b") as stream:
        stream.seek(0, io.SEEK_END)
        if stream.tell() < SEED_MIN_SIZE:
            stream.truncate(SEED_MIN_SIZE)
    return path


def make_overlay(base: Path, overlay: Path) -> Path:
    """A qcow2 overlay on the image's disk (absolute backing path, format given)."""
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(base.resolve()),
         str(overlay)],
        check=True,
        timeout=30,
    )  # fmt: skip
    return overlay


class TinyVM:
    """One QEMU process running the tiny image, its console going to a file."""

    def __init__(
        self,
        image_dir: Path,
        workdir: Path,
        overlay: Path,
        seed: Path | None = None,
        nic: bool = False,
        memory_mb: int = 256,
    ) -> None:
        self.image_dir = image_dir
        self.manifest: TinyManifest = load_manifest(image_dir)
        self.workdir = workdir
        self.overlay = overlay
        self.seed = seed
        self.nic = nic
        self.memory_mb = max(memory_mb, self.manifest.min_memory_mb)
        self.console_log = workdir / "console.log"
        self.stderr_log = workdir / "qemu.stderr"
        # unix socket paths are limited to 107 bytes: keep this one short
        self._qmp_dir = Path(tempfile.mkdtemp(prefix="tinyqmp-"))
        self.qmp_socket = self._qmp_dir / "qmp.sock"
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    def command(self) -> list[str]:
        m = self.manifest
        args = [
            "qemu-system-x86_64",
            "-accel", "tcg",
            "-nodefaults", "-no-user-config", "-display", "none",
            "-machine", "q35,graphics=off", "-m", str(self.memory_mb), "-smp", "1",
            "-no-reboot",
            "-kernel", str(self.image_dir / m.kernel),
            "-initrd", str(self.image_dir / m.initrd),
            "-append", m.kernel_cmdline,
            "-blockdev", f"driver=file,filename={self.overlay},node-name=root-file",
            "-blockdev", "driver=qcow2,file=root-file,node-name=root",
            "-device", "virtio-blk-pci,drive=root",
            "-chardev", f"file,id=console,path={self.console_log}",
            "-serial", "chardev:console",
            "-qmp", f"unix:{self.qmp_socket},server=on,wait=off",
        ]  # fmt: skip
        if self.seed is not None:
            args += [
                "-blockdev",
                f"driver=file,filename={self.seed},node-name=seed-file,read-only=on",
                "-blockdev", "driver=raw,file=seed-file,node-name=seed,read-only=on",
                "-device", "virtio-blk-pci,drive=seed",
            ]  # fmt: skip
        if self.nic:
            args += ["-netdev", "user,id=net0", "-device", "virtio-net-pci,netdev=net0"]
        return args

    def start(self) -> TinyVM:
        self.console_log.write_bytes(b"")
        self.started_at = time.monotonic()
        with self.stderr_log.open("wb") as stderr:
            self.process = subprocess.Popen(
                self.command(), stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr
            )
        return self

    def console(self) -> str:
        return self.console_log.read_bytes().decode(errors="replace").replace("\r", "")

    def lines(self) -> list[str]:
        return self.console().splitlines()

    def _diagnostics(self) -> str:
        stderr = self.stderr_log.read_text(errors="replace") if self.stderr_log.exists() else ""
        return f"\n--- console ---\n{self.console()}\n--- qemu stderr ---\n{stderr}"

    def wait_for_line(self, line: str, timeout: float) -> float:
        """Wait until ``line`` is a whole console line; return seconds since start."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if line in self.lines():
                return time.monotonic() - self.started_at
            if self.process.poll() is not None:
                raise AssertionError(f"QEMU exited before {line!r}{self._diagnostics()}")
            time.sleep(0.05)
        raise AssertionError(f"no {line!r} within {timeout} s{self._diagnostics()}")

    def wait_for_exit(self, timeout: float) -> float:
        """Wait for QEMU to exit by itself (status 0); return seconds since start."""
        assert self.process is not None
        try:
            status = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"QEMU still running after {timeout} s{self._diagnostics()}"
            ) from None
        assert status == 0, f"QEMU exit status {status}{self._diagnostics()}"
        return time.monotonic() - self.started_at

    def qmp(self, command: str) -> object:
        """Run one QMP command on a fresh connection."""
        monitor = QEMUMonitorProtocol(str(self.qmp_socket))
        try:
            monitor.connect()
            return monitor.cmd(command)
        finally:
            monitor.close()

    def stop(self) -> None:
        """Kill QEMU if it still runs and remove the QMP directory."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        shutil.rmtree(self._qmp_dir, ignore_errors=True)
