"""A small synchronous QMP client with timeouts and clear errors.

It wraps :class:`qemu.qmp.legacy.QEMUMonitorProtocol`, whose ``connect`` has
no timeout of its own. A timeout matters: QEMU's monitor serves one client
at a time, and a second client's connection is accepted by the kernel but
gets no greeting until the first one leaves, so without a timeout it would
wait forever.

The wrapper runs its own asyncio event loop in the calling thread, so it must
not be used from a thread that is running an event loop (use
``asyncio.to_thread`` from async code).
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from types import TracebackType
from typing import Any

from qemu.qmp import ConnectError, ExecInterruptedError, ExecuteError, QMPError, StateError
from qemu.qmp.legacy import QEMUMonitorProtocol

from gridvm.common.errors import HypervisorError

DEFAULT_CONNECT_TIMEOUT = 2.0
DEFAULT_COMMAND_TIMEOUT = 10.0


class QmpUnavailable(HypervisorError):
    """Nothing listens on the QMP socket (missing, or refused): no QEMU behind it."""


class QmpTimeout(HypervisorError):
    """QEMU is there but did not answer in time (busy, or another client holds the monitor)."""


class _Monitor(QEMUMonitorProtocol):
    """The legacy wrapper, plus connect and close with a timeout."""

    def connect_within(self, timeout: float) -> None:
        self._sync(self._qmp.connect(self._address), timeout)

    def close_within(self, timeout: float) -> None:
        self._sync(self._qmp.disconnect(), timeout)


class QmpClient:
    """One QMP session to one QEMU, used as a context manager::

    with QmpClient(spec.qmp_socket) as qmp:
        qmp.status()
    """

    def __init__(
        self,
        socket_path: Path,
        *,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        command_timeout: float = DEFAULT_COMMAND_TIMEOUT,
    ) -> None:
        self.socket_path = socket_path
        self.connect_timeout = connect_timeout
        self.command_timeout = command_timeout
        self._monitor: _Monitor | None = None

    def __enter__(self) -> QmpClient:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def connect(self) -> None:
        """Connect and negotiate capabilities, or raise :class:`HypervisorError`."""
        if self._monitor is not None:
            return
        _refuse_inside_event_loop()
        path = self.socket_path
        if not path.exists():
            raise QmpUnavailable(
                f"QMP socket {path} does not exist",
                hint="the VM is not running (or QEMU has not created its monitor yet)",
            )
        monitor = _Monitor(str(path))
        try:
            monitor.connect_within(self.connect_timeout)
        except TimeoutError:
            _close_quietly(monitor)
            raise QmpTimeout(
                f"QEMU did not answer on QMP socket {path} within {self.connect_timeout:g} s",
                hint="QEMU is busy, or another client holds its monitor "
                "(QMP serves one client at a time)",
            ) from None
        except ConnectError as error:
            _close_quietly(monitor)
            raise _connect_error(path, error) from error
        except (QMPError, OSError, EOFError) as error:
            _close_quietly(monitor)
            raise HypervisorError(f"QMP handshake on {path} failed: {error}") from error
        monitor.settimeout(self.command_timeout)
        self._monitor = monitor

    def close(self) -> None:
        if self._monitor is not None:
            _close_quietly(self._monitor)
            self._monitor = None

    def command(self, name: str, **args: Any) -> Any:
        """Run one QMP command and return its ``return`` value."""
        if self._monitor is None:
            raise HypervisorError(f"QMP command {name}: not connected to {self.socket_path}")
        try:
            return self._monitor.cmd(name, **args)
        except ExecuteError as error:
            raise HypervisorError(f"QEMU refused QMP command {name}: {error}") from error
        except TimeoutError:
            self.close()  # a late reply would be read as the next command's answer
            raise QmpTimeout(
                f"QEMU did not answer QMP command {name} within {self.command_timeout:g} s"
            ) from None
        except (ExecInterruptedError, StateError, EOFError, OSError, QMPError) as error:
            self.close()
            raise HypervisorError(
                f"QMP connection to {self.socket_path} broke during {name}: "
                f"{error or type(error).__name__}"
            ) from error

    def status(self) -> str:
        """The VM's run state as QEMU names it: running, paused, shutdown, ..."""
        answer = self.command("query-status")
        if not isinstance(answer, dict) or not isinstance(answer.get("status"), str):
            raise HypervisorError(f"unexpected answer to query-status: {answer!r}")
        status: str = answer["status"]
        return status

    def pause(self) -> None:
        self.command("stop")

    def resume(self) -> None:
        self.command("cont")

    def powerdown(self) -> None:
        """Press the ACPI power button; the guest decides what to do with it."""
        self.command("system_powerdown")

    def quit(self) -> None:
        """Ask QEMU to exit now. QEMU may hang up before or after answering."""
        try:
            self.command("quit")
        except HypervisorError as error:
            if isinstance(error, QmpTimeout) or not isinstance(
                error.__cause__, ExecInterruptedError | StateError | EOFError | OSError
            ):
                raise


def _connect_error(path: Path, error: ConnectError) -> HypervisorError:
    cause = error.exc
    if isinstance(cause, ConnectionRefusedError):
        return QmpUnavailable(
            f"QMP socket {path} refused the connection",
            hint="no QEMU listens there any more: the socket is stale",
        )
    if isinstance(cause, FileNotFoundError):
        return QmpUnavailable(f"QMP socket {path} does not exist")
    if isinstance(cause, TimeoutError):
        return QmpTimeout(f"connecting to QMP socket {path} timed out")
    if isinstance(cause, EOFError | ConnectionResetError):
        return QmpUnavailable(f"QEMU hung up on QMP socket {path} during the handshake")
    return HypervisorError(f"cannot connect to QMP socket {path}: {error}")


def _close_quietly(monitor: _Monitor) -> None:
    # Errors while hanging up only repeat what already went wrong.
    with contextlib.suppress(Exception):
        monitor.close_within(DEFAULT_CONNECT_TIMEOUT)


def _refuse_inside_event_loop() -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise HypervisorError(
        "QmpClient is synchronous and cannot run inside an asyncio event loop",
        hint="call it through asyncio.to_thread()",
    )
