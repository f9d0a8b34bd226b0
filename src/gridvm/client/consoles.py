"""An attached serial console: type into a running VM and read what it prints."""

from __future__ import annotations

from types import TracebackType

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection

from gridvm.client.errors import ConsoleClosed
from gridvm.schemas.consoles import CLOSE_NORMAL, MAX_MESSAGE_BYTES


class ConsoleAttachment:
    """A VM's serial console, attached through the server (``Vms.attach``).

    >>> with gv.vms.attach(vm_id) as console:
    ...     console.send(b"uname -a\\n")
    ...     print(console.recv(timeout=5).decode(errors="replace"))

    ``recv`` returns the next bytes the guest printed; when the session ends (you
    detached, the VM stopped, its host went away) it raises ``ConsoleClosed``,
    whose ``normal`` says whether the end was an orderly one. What the guest
    prints also goes to the VM's console log (``Vms.console``), attached or not.
    """

    def __init__(self, vm_id: str, connection: ClientConnection) -> None:
        self.vm_id = vm_id
        self._ws = connection
        self._detached = False

    def send(self, data: bytes) -> None:
        """Type ``data`` into the console (split into messages the server accepts)."""
        try:
            for start in range(0, len(data), MAX_MESSAGE_BYTES):
                self._ws.send(data[start : start + MAX_MESSAGE_BYTES])
        except ConnectionClosed as exc:
            raise self._closed(exc) from None

    def recv(self, timeout: float | None = None) -> bytes:
        """The next output of the console; ``TimeoutError`` if none came in ``timeout`` s."""
        try:
            message = self._ws.recv(timeout=timeout)
        except ConnectionClosed as exc:
            raise self._closed(exc) from None
        return message.encode() if isinstance(message, str) else bytes(message)

    def close(self) -> None:
        """Detach (the VM goes on running)."""
        self._detached = True
        self._ws.close(CLOSE_NORMAL, "detached")

    def _closed(self, exc: ConnectionClosed) -> ConsoleClosed:
        if self._detached:
            return ConsoleClosed(f"detached from VM {self.vm_id}", close_code=CLOSE_NORMAL)
        frame = exc.rcvd
        if frame is None:
            return ConsoleClosed(
                f"the connection to the console of VM {self.vm_id} broke off", close_code=1006
            )
        reason = frame.reason or f"closed with code {frame.code}"
        return ConsoleClosed(
            f"the console of VM {self.vm_id} closed: {reason}", close_code=frame.code
        )

    def __enter__(self) -> ConsoleAttachment:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
