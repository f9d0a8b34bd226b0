"""For attached-console tests without QEMU: a unix socket standing in for a VM's serial port,
and a host that relays sessions to it with the agent's real relay code."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gridvm.agent.console_relay import ConsoleRelays
from gridvm.agent.link import ServerLink
from gridvm.common.errors import GridvmError
from gridvm.schemas.agent import SyncRequest
from tests.servers import RunningServer


class SerialPort:
    """A listening unix socket, like QEMU's serial chardev: one client at a time.

    Its "guest" prints ``# `` when a client connects, echoes what it is sent (as a
    terminal would) and answers a line ``echo WORDS`` with ``WORDS``.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.received = bytearray()
        self.clients = 0
        self.client_left = threading.Event()
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(path))
        self._listener.listen(1)
        self._client: socket.socket | None = None
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self._client = client
            self.clients += 1
            self.client_left.clear()
            with client:
                client.sendall(b"# ")
                line = b""
                while data := _recv(client):
                    self.received += data
                    client.sendall(data.replace(b"\n", b"\r\n"))
                    line += data
                    while b"\n" in line:
                        command, line = line.split(b"\n", 1)
                        if command.startswith(b"echo "):
                            client.sendall(command[5:] + b"\r\n")
                        client.sendall(b"# ")
            self._client = None
            self.client_left.set()

    def hang_up(self) -> None:
        """The VM stops: QEMU closes the client's connection and stops listening."""
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept()
        self._listener.close()
        if self._client is not None:
            with contextlib.suppress(OSError):
                self._client.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.hang_up()
        self._thread.join(timeout=10)


def _recv(client: socket.socket) -> bytes:
    try:
        return client.recv(4096)
    except OSError:
        return b""


@contextmanager
def serial_port(path: Path) -> Iterator[SerialPort]:
    port = SerialPort(path)
    try:
        yield port
    finally:
        port.close()


@contextmanager
def console_host(
    server: RunningServer, agent_token: str, serial: dict[str, Path], host: str = "node1"
) -> Iterator[ConsoleRelays]:
    """Host ``host``'s agent as far as consoles go: it syncs (long poll) and relays each
    session it is asked for to ``serial[vm_id]``, with the agent's own relay code."""
    link = ServerLink(server.url, agent_token)
    relays = ConsoleRelays(link.open_console)
    stop = threading.Event()

    def run() -> None:
        generation = None
        while not stop.is_set():
            try:
                answer = link.sync(SyncRequest(host=host, since=generation, wait_s=0.5))
            except GridvmError:
                if stop.wait(0.1):
                    return
                continue
            generation = answer.generation
            relays.open(answer.console_sessions, serial.get)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield relays
    finally:
        stop.set()
        thread.join(timeout=10)
        relays.close_all()
        link.close()
