"""The QEMU driver: run the argv from :mod:`qemu_argv`, control through QMP.

QEMU runs daemonized (``-daemonize``), so it is not the agent's child and
outlives agent restarts. The driver finds a VM's process through the pid file
in the VM's run directory, and trusts a pid only after /proc shows it is a
QEMU with the VM's ``-name`` (see :mod:`gridvm.hypervisor.procfs`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator

from gridvm.common.errors import HypervisorError
from gridvm.hypervisor import procfs
from gridvm.hypervisor.driver import HypervisorDriver, VmState
from gridvm.hypervisor.qemu_argv import DEFAULT_QEMU_BINARY, build_argv
from gridvm.hypervisor.qmp import QmpClient, QmpUnavailable
from gridvm.hypervisor.spec import MachineSpec

log = logging.getLogger(__name__)

DEFAULT_START_TIMEOUT = 30.0
DEFAULT_QMP_TIMEOUT = 5.0
_POLL_INTERVAL = 0.01
_MAX_ERROR_CHARS = 4000

# QEMU run states (QAPI RunState) as driver states.
_STATE_OF_STATUS: dict[str, VmState] = {
    "running": "running",
    "paused": "paused",
    "suspended": "paused",
    "debug": "paused",
    "postmigrate": "paused",
    "finish-migrate": "paused",
    "save-vm": "paused",
    "colo": "paused",
    "prelaunch": "starting",
    "inmigrate": "starting",
    "restore-vm": "starting",
    "shutdown": "shutdown",
    "internal-error": "error",
    "io-error": "error",
    "guest-panicked": "error",
    "watchdog": "error",
}


class QemuDriver(HypervisorDriver):
    """Runs each VM as one daemonized ``qemu-system-x86_64`` process.

    Thread-safe: start, kill and QMP access are serialised per VM (QEMU's
    monitor serves one client at a time).
    """

    def __init__(
        self,
        qemu_binary: str = DEFAULT_QEMU_BINARY,
        *,
        start_timeout: float = DEFAULT_START_TIMEOUT,
        qmp_timeout: float = DEFAULT_QMP_TIMEOUT,
    ) -> None:
        self.qemu_binary = qemu_binary
        self.start_timeout = start_timeout
        self.qmp_timeout = qmp_timeout
        self._locks: dict[str, threading.RLock] = {}
        self._locks_guard = threading.Lock()

    # -- lifecycle -------------------------------------------------------

    def start(self, spec: MachineSpec) -> int:
        with self._lock(spec.vm_id):
            return self._start(spec)

    def _start(self, spec: MachineSpec) -> int:
        if not spec.run_dir.is_dir():
            raise HypervisorError(f"run directory {spec.run_dir} does not exist")
        running = self._pid_from_pidfile(spec) or self._pid_by_name(spec)
        if running is not None:
            raise HypervisorError(f"VM {spec.vm_id} is already running (pid {running})")
        self._remove_runtime_files(spec)
        argv = build_argv(spec, self.qemu_binary)
        try:
            # -daemonize: this returns once the VM is set up (or failed);
            # the daemon closes our pipes then, so communicate() ends too.
            done = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=self.start_timeout,
                start_new_session=True,
                check=False,
            )
        except FileNotFoundError:
            raise HypervisorError(
                f"QEMU binary {self.qemu_binary} not found", hint="install qemu-system-x86"
            ) from None
        except subprocess.TimeoutExpired:
            self._clean_up_failed_start(spec)
            raise HypervisorError(
                f"QEMU did not finish starting VM {spec.vm_id} within {self.start_timeout:g} s"
            ) from None
        if done.returncode != 0:
            self._clean_up_failed_start(spec)
            raise HypervisorError(_start_failure(spec, done))
        if done.stderr.strip():
            log.warning(
                "QEMU for VM %s: %s",
                spec.vm_id,
                done.stderr.decode("utf-8", errors="replace").strip(),
            )
        pid = self._pid_from_pidfile(spec)
        if pid is None:
            self._clean_up_failed_start(spec)
            raise HypervisorError(
                f"QEMU reported VM {spec.vm_id} started, but no live process is in "
                f"its pid file {spec.pidfile}"
            )
        return pid

    def state(self, spec: MachineSpec) -> VmState:
        pid = self._pid_from_pidfile(spec)
        if pid is None:
            return "gone"
        try:
            with self._qmp(spec) as qmp:
                status = qmp.status()
        except QmpUnavailable:
            # Alive but no monitor (yet): QEMU creates it early during start.
            return "starting" if procfs.is_qemu_named(pid, spec.qemu_name) else "gone"
        except HypervisorError:
            if not procfs.is_qemu_named(pid, spec.qemu_name):
                return "gone"
            raise
        return _STATE_OF_STATUS.get(status, "error")

    def powerdown(self, spec: MachineSpec) -> None:
        with self._qmp(spec, require_running=True) as qmp:
            qmp.powerdown()

    def pause(self, spec: MachineSpec) -> None:
        with self._qmp(spec, require_running=True) as qmp:
            qmp.pause()

    def resume(self, spec: MachineSpec) -> None:
        with self._qmp(spec, require_running=True) as qmp:
            qmp.resume()

    def kill(self, spec: MachineSpec, timeout: float = 5.0) -> None:
        """QMP ``quit``, then SIGTERM, then SIGKILL; each step waits up to ``timeout``."""
        pid = self._pid_from_pidfile(spec) or self._pid_by_name(spec)
        if pid is not None and not self._end_process(spec, pid, timeout):
            raise HypervisorError(
                f"QEMU process {pid} of VM {spec.vm_id} survived SIGKILL for {timeout:g} s",
                hint=f"it is probably stuck in the kernel (state D): look at /proc/{pid}/stack",
            )
        self._remove_runtime_files(spec)

    def find_running(self) -> dict[str, int]:
        found: dict[str, list[int]] = {}
        for vm_id, pid in procfs.iter_gridvm_qemus():
            found.setdefault(vm_id, []).append(pid)
        return {vm_id: _daemon_of(pids) for vm_id, pids in found.items()}

    # -- helpers ---------------------------------------------------------

    def _end_process(self, spec: MachineSpec, pid: int, timeout: float) -> bool:
        name = spec.qemu_name
        try:
            with self._qmp(spec) as qmp:
                qmp.quit()
        except HypervisorError:
            pass  # no usable monitor: go straight to signals
        else:
            if _wait_gone(pid, name, timeout):
                return True
        for signum in (signal.SIGTERM, signal.SIGKILL):
            if not procfs.is_qemu_named(pid, name):
                return True
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)
            if _wait_gone(pid, name, timeout):
                return True
        return False

    def _pid_from_pidfile(self, spec: MachineSpec) -> int | None:
        pid = procfs.read_pidfile(spec.pidfile)
        if pid is not None and procfs.is_qemu_named(pid, spec.qemu_name):
            return pid
        return None

    def _pid_by_name(self, spec: MachineSpec) -> int | None:
        pids = [pid for vm_id, pid in procfs.iter_gridvm_qemus() if vm_id == spec.vm_id]
        return _daemon_of(pids) if pids else None

    def _clean_up_failed_start(self, spec: MachineSpec) -> None:
        """Leave nothing behind a start that failed or timed out."""
        for pid in {self._pid_from_pidfile(spec), self._pid_by_name(spec)}:
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                _wait_gone(pid, spec.qemu_name, 5.0)
        self._remove_runtime_files(spec)

    @staticmethod
    def _remove_runtime_files(spec: MachineSpec) -> None:
        # The console log stays: it is the VM's record.
        for path in (spec.qmp_socket, spec.serial_socket, spec.guest_socket, spec.pidfile):
            path.unlink(missing_ok=True)

    def _lock(self, vm_id: str) -> threading.RLock:
        with self._locks_guard:
            return self._locks.setdefault(vm_id, threading.RLock())

    @contextlib.contextmanager
    def _qmp(self, spec: MachineSpec, *, require_running: bool = False) -> Iterator[QmpClient]:
        if require_running and self._pid_from_pidfile(spec) is None:
            raise HypervisorError(f"VM {spec.vm_id} is not running")
        with (
            self._lock(spec.vm_id),
            QmpClient(
                spec.qmp_socket,
                connect_timeout=self.qmp_timeout,
                command_timeout=self.qmp_timeout,
            ) as qmp,
        ):
            yield qmp


def _wait_gone(pid: int, name: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while procfs.is_qemu_named(pid, name):
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL_INTERVAL)
    return True


def _daemon_of(pids: list[int]) -> int:
    """Pick the daemon among QEMUs of one name.

    During ``-daemonize`` the parent and its forked child briefly share the
    command line; the child (whose parent is the other one) is the VM.
    """
    for pid in pids:
        if procfs.parent_pid(pid) in pids:
            return pid
    return max(pids)


def _start_failure(spec: MachineSpec, done: subprocess.CompletedProcess[bytes]) -> str:
    output = (done.stderr or b"").decode("utf-8", errors="replace").strip()
    if not output:
        output = (done.stdout or b"").decode("utf-8", errors="replace").strip()
    if not output:
        return (
            f"QEMU failed to start VM {spec.vm_id}: exit status {done.returncode} "
            "and no message (a seccomp sandbox violation ends QEMU this way; "
            "look for SIGSYS audit lines in the kernel log)"
        )
    if len(output) > _MAX_ERROR_CHARS:
        output = "..." + output[-_MAX_ERROR_CHARS:]
    return f"QEMU failed to start VM {spec.vm_id}: {output}"
