"""Choosing the accelerator: KVM only where KVM really runs guests.

Checking that /dev/kvm exists, or even that QEMU starts with ``-accel kvm``
and answers QMP, is not enough: on some virtualised hosts both succeed while
guest memory writes trap so slowly that a Linux guest hangs in its
decompressor. So the probe boots a real (tiny) guest under KVM, the
:mod:`~gridvm.hypervisor.probe_guest`, and times its memory-write loop.
"""

from __future__ import annotations

import functools
import logging
import os
import selectors
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from gridvm.common.errors import InvalidInput
from gridvm.hypervisor import probe_guest
from gridvm.hypervisor.qemu_argv import DEFAULT_QEMU_BINARY, qemu_opt_value
from gridvm.hypervisor.spec import ACCELERATORS, Accelerator

log = logging.getLogger(__name__)

ENV_OVERRIDE = "GRIDVM_ACCEL"
KVM_DEVICE = Path("/dev/kvm")
# The write loop takes ~10 ms under a working KVM, ~0.1 s under TCG, and
# seconds where KVM is broken in the way described above.
WORK_BUDGET = 1.0


@dataclass(frozen=True)
class ProbeResult:
    usable: bool
    detail: str
    """Why (not): for logs and the host's registration record."""


def detect_accelerator(qemu_binary: str = DEFAULT_QEMU_BINARY, timeout: float = 5.0) -> Accelerator:
    """``kvm`` if KVM really runs a guest on this host, else ``tcg``.

    ``GRIDVM_ACCEL=kvm|tcg`` overrides the probe. The probe's answer is
    cached for the life of the process.
    """
    forced = os.environ.get(ENV_OVERRIDE, "").strip()
    if forced:
        for accel in ACCELERATORS:
            if forced == accel:
                return accel
        raise InvalidInput(
            f"{ENV_OVERRIDE}={forced!r} is not an accelerator",
            hint=f"use one of {', '.join(ACCELERATORS)}, or unset it to detect",
        )
    return _detect_cached(qemu_binary, timeout)


@functools.cache
def _detect_cached(qemu_binary: str, timeout: float) -> Accelerator:
    probe = probe_kvm(qemu_binary, timeout)
    log.info("KVM %s: %s", "usable" if probe.usable else "not usable", probe.detail)
    return "kvm" if probe.usable else "tcg"


def probe_kvm(qemu_binary: str = DEFAULT_QEMU_BINARY, timeout: float = 5.0) -> ProbeResult:
    """Judge whether KVM works by booting the probe guest under it (not cached)."""
    if not KVM_DEVICE.exists():
        return ProbeResult(False, f"{KVM_DEVICE} does not exist")
    if not os.access(KVM_DEVICE, os.R_OK | os.W_OK):
        return ProbeResult(False, f"{KVM_DEVICE} is not readable and writable by this user")
    return run_probe_guest("kvm", qemu_binary, timeout)


def run_probe_guest(
    accelerator: Accelerator,
    qemu_binary: str = DEFAULT_QEMU_BINARY,
    timeout: float = 5.0,
    work_budget: float = WORK_BUDGET,
) -> ProbeResult:
    """Boot the probe guest with ``accelerator`` and time it."""
    workdir = Path(tempfile.mkdtemp(prefix="gridvm-kvm-probe-"))
    try:
        image = workdir / "probe.img"
        image.write_bytes(probe_guest.disk_image())
        return _boot_probe(probe_argv(qemu_binary, image, accelerator), timeout, work_budget)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def probe_argv(qemu_binary: str, image: Path, accelerator: Accelerator = "kvm") -> list[str]:
    return [
        qemu_binary,
        "-machine",
        f"q35,accel={accelerator},graphics=off",
        "-cpu",
        "host" if accelerator == "kvm" else "max",
        "-smp",
        "1",
        "-m",
        "128",
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-vga",
        "none",
        "-no-reboot",
        "-serial",
        "stdio",
        "-blockdev",
        f"driver=raw,node-name=probe,read-only=on,file.driver=file,"
        f"file.filename={qemu_opt_value(image)}",
        "-device",
        "virtio-blk-pci,drive=probe",
        "-nic",
        "none",
    ]


def _boot_probe(argv: list[str], timeout: float, work_budget: float) -> ProbeResult:
    started = time.monotonic()
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    except OSError as error:
        return ProbeResult(False, f"cannot run {argv[0]}: {error}")
    try:
        return _watch_probe(proc, started, timeout, work_budget)
    finally:
        proc.kill()
        proc.wait()
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


def _watch_probe(
    proc: subprocess.Popen[bytes], started: float, timeout: float, work_budget: float
) -> ProbeResult:
    """Read the guest's serial output until it reports done, fails, or time runs out."""
    assert proc.stdout is not None and proc.stderr is not None
    serial_fd, stderr_fd = proc.stdout.fileno(), proc.stderr.fileno()
    output = {serial_fd: bytearray(), stderr_fd: bytearray()}
    began: float | None = None
    deadline = started + timeout
    with selectors.DefaultSelector() as selector:
        for fd in output:
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            for key, _ in selector.select(remaining):
                chunk = os.read(key.fd, 4096)
                if not chunk:
                    selector.unregister(key.fileobj)
                    continue
                output[key.fd].extend(chunk)
            serial = output[serial_fd]
            now = time.monotonic()
            if began is None and probe_guest.BEGIN_MARKER in serial:
                began = now
            if began is not None and probe_guest.DONE_MARKER in serial:
                work = now - began
                if work > work_budget:
                    return ProbeResult(
                        False,
                        f"the guest runs too slowly ({work:.2f} s of work "
                        f"for a {work_budget:g} s budget)",
                    )
                return ProbeResult(
                    True,
                    f"the probe guest ran in {now - started:.2f} s (work {work * 1000:.0f} ms)",
                )
    errors = output[stderr_fd].decode("utf-8", errors="replace").strip()
    stage = "reached long mode" if began is None else "finished its work"
    try:  # the pipes may close a moment before the process can be reaped
        returncode = proc.wait(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        return ProbeResult(False, f"the probe guest never {stage} within {timeout:g} s")
    if returncode != 0:
        return ProbeResult(False, f"QEMU failed: {errors or f'exit status {returncode}'}")
    return ProbeResult(False, f"QEMU exited before the probe guest {stage}")
