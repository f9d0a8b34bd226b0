"""Attached consoles on a host: join a websocket to the server with a VM's serial socket.

When a user attaches to a VM's console, the server lists a session in its sync
answer; the agent then dials out (hosts take no inbound connections): it
connects to the VM's serial socket (``serial.sock``, QEMU's socket chardev,
one client at a time), opens a websocket for the session, says whether it got
the serial port (``AgentConsoleHello``), and copies bytes both ways until
either side closes. QEMU writes the guest's output to ``console.log`` whether
or not a client is connected, so the log the agent ships stays complete.

One thread per session copies the server's messages into the socket and a
second one the socket's output to the server. A session ends when the user
detaches (the server closes the websocket), when the VM's serial socket
closes (QEMU stopped), or when the agent stops (``close_all``).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection

from gridvm.common.errors import GridvmError
from gridvm.schemas.consoles import (
    CLOSE_GOING_AWAY,
    CLOSE_NORMAL,
    MAX_MESSAGE_BYTES,
    AgentConsoleHello,
    ConsoleSessionOrder,
)

log = logging.getLogger(__name__)

READ_BYTES = 4096
SERIAL_CLOSED = "the VM's serial port closed (the VM stopped)"
CONNECT_TIMEOUT_S = 5.0

# Session id -> this host's websocket for it.
OpenWebsocket = Callable[[str], ClientConnection]
# VM id -> its serial socket on this host (None: no such VM here).
SerialSocket = Callable[[str], Path | None]


class ConsoleRelays:
    """The attached consoles of this host, one relay per session."""

    def __init__(self, open_websocket: OpenWebsocket) -> None:
        self._open_websocket = open_websocket
        self._lock = threading.Lock()
        self._relays: dict[str, Relay] = {}

    def open(self, orders: Iterable[ConsoleSessionOrder], serial_socket: SerialSocket) -> None:
        """Start a relay for each session not handled yet (the server lists a session
        until its websocket arrives, so it may come in several syncs)."""
        for order in orders:
            with self._lock:
                if order.session_id in self._relays:
                    continue
                relay = Relay(order, self._open_websocket, serial_socket)
                self._relays[order.session_id] = relay
            threading.Thread(
                target=self._run, args=(relay,), name=f"gridvm-console-{order.vm_id}", daemon=True
            ).start()

    def active(self) -> list[str]:
        """The ids of the sessions being relayed now."""
        with self._lock:
            return sorted(self._relays)

    def close_all(self, reason: str = "the host's agent is stopping") -> None:
        with self._lock:
            relays = list(self._relays.values())
        for relay in relays:
            relay.stop(reason)

    def _run(self, relay: Relay) -> None:
        try:
            relay.run()
        except Exception:
            log.exception("console session %s of VM %s failed", relay.session_id, relay.vm_id)
        finally:
            with self._lock:
                self._relays.pop(relay.session_id, None)


class Relay:
    """One session: the VM's serial socket <-> this host's websocket to the server."""

    def __init__(
        self,
        order: ConsoleSessionOrder,
        open_websocket: OpenWebsocket,
        serial_socket: SerialSocket,
    ) -> None:
        self.session_id = order.session_id
        self.vm_id = order.vm_id
        self._open_websocket = open_websocket
        self._serial_socket = serial_socket
        self._sock: socket.socket | None = None
        self._ws: ClientConnection | None = None
        self._stopped = threading.Event()

    def run(self) -> None:
        sock, problem = self._connect_serial()
        try:
            ws = self._open_websocket(self.session_id)
        except GridvmError as exc:
            log.warning(
                "console session %s of VM %s not opened: %s", self.session_id, self.vm_id, exc
            )
            if sock is not None:
                sock.close()
            return
        self._sock, self._ws = sock, ws
        with ws:
            if sock is None or self._stopped.is_set():
                message = problem or "the host's agent is stopping"
                ws.send(AgentConsoleHello(ready=False, message=message).model_dump_json())
                return
            ws.send(AgentConsoleHello(ready=True).model_dump_json())
            log.info("console of VM %s attached (session %s)", self.vm_id, self.session_id)
            output = threading.Thread(
                target=self._serial_to_server, name=f"gridvm-console-out-{self.vm_id}", daemon=True
            )
            output.start()
            try:
                self._server_to_serial(sock, ws)
            finally:
                _shutdown(sock)
                output.join(timeout=10)
                sock.close()
        log.info("console of VM %s detached (session %s)", self.vm_id, self.session_id)

    def stop(self, reason: str) -> None:
        """End the session from this side (the agent is stopping)."""
        self._stopped.set()
        if self._ws is not None:
            self._ws.close(CLOSE_GOING_AWAY, reason)
        if self._sock is not None:
            _shutdown(self._sock)

    def _connect_serial(self) -> tuple[socket.socket | None, str | None]:
        path = self._serial_socket(self.vm_id)
        if path is None:
            return None, f"VM {self.vm_id} is not running on this host"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(CONNECT_TIMEOUT_S)
            sock.connect(str(path))
            sock.settimeout(None)
        except OSError as exc:
            sock.close()
            reason = exc.strerror or str(exc) or type(exc).__name__
            return None, f"cannot open the serial port of VM {self.vm_id}: {reason}"
        return sock, None

    def _server_to_serial(self, sock: socket.socket, ws: ClientConnection) -> None:
        """What the user types, into the VM's serial port, until the websocket closes."""
        try:
            for message in ws:
                data = message.encode() if isinstance(message, str) else bytes(message)
                sock.sendall(data[:MAX_MESSAGE_BYTES])
        except ConnectionClosed:
            pass
        except OSError:
            ws.close(CLOSE_NORMAL, SERIAL_CLOSED)

    def _serial_to_server(self) -> None:
        """What the guest prints, to the server, until the serial socket closes."""
        sock, ws = self._sock, self._ws
        assert sock is not None and ws is not None
        while True:
            try:
                data = sock.recv(READ_BYTES)
            except OSError:
                data = b""
            if not data:
                # QEMU closed the socket (the VM stopped), or the session ended and the
                # socket was shut down (then the websocket is closed already).
                ws.close(CLOSE_NORMAL, SERIAL_CLOSED)
                return
            try:
                ws.send(data)
            except ConnectionClosed:
                _shutdown(sock)
                return


def _shutdown(sock: socket.socket) -> None:
    """Wake whichever thread is blocked on ``sock``; QEMU sees the client leave."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
