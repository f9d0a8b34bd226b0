"""Relay each VM's guest channel to the server's guest API.

Every VM has a virtio-serial port (``org.gridvm.guest.0``) whose host end is the
unix socket ``guest.sock`` in its run directory. The agent connects to it and
forwards the guest's requests to ``/api/v1/guest/...`` with the VM token the guest
presents, so a VM can report (ready, progress, data for its peers) and read its
group context with no network at all. The agent adds no authority of its own: a
guest can do exactly what its token allows.

Framing (small enough for a busybox shell), one request at a time per VM::

    request:  ID METHOD PATH LENGTH TYPE TOKEN\\n  then LENGTH bytes of body
    response: ID STATUS LENGTH\\n                 then LENGTH bytes of body

``ID`` is the guest's label for the request (it drops answers to an earlier,
abandoned one); ``METHOD`` is GET, POST, PUT or DELETE; ``PATH`` starts with
``/guest/``; ``TYPE`` is ``json`` or ``text`` (the body's content type). A
malformed header line is answered with status 400 and skipped.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

log = logging.getLogger(__name__)

MAX_BODY = 128 * 1024
MAX_LINE = 1024
RECONNECT_S = 0.5
_ID = r"[A-Za-z0-9]{1,16}"
_HEADER = re.compile(
    rf"({_ID}) (GET|POST|PUT|DELETE) (/guest/[A-Za-z0-9/_.~%=&?+-]{{0,500}}) ([0-9]{{1,7}}) "
    r"(json|text) ([A-Za-z0-9._-]{1,200})"
)
CONTENT_TYPES = {"json": "application/json", "text": "text/plain; charset=utf-8"}


@dataclass(frozen=True)
class GuestRequest:
    request_id: str
    method: str
    path: str
    body: bytes
    content_type: str
    token: str


@dataclass(frozen=True)
class GuestAnswer:
    status: int
    body: bytes


Forward = Callable[[GuestRequest], GuestAnswer]


class FrameError(ValueError):
    def __init__(self, request_id: str, message: str) -> None:
        super().__init__(message)
        self.request_id = request_id


def parse_header(line: bytes) -> tuple[str, str, str, int, str, str]:
    """(id, method, path, length, content type, token) of a request header line."""
    text = line.decode("ascii", errors="replace").rstrip("\r\n")
    match = _HEADER.fullmatch(text)
    first = text.split(" ", 1)[0]
    request_id = first if re.fullmatch(_ID, first) else "-"
    if match is None:
        raise FrameError(
            request_id, "malformed request line: ID METHOD /guest/... LENGTH TYPE TOKEN"
        )
    if ".." in match[3] or "%2e" in match[3].lower():
        raise FrameError(request_id, "the path must not contain '..'")
    length = int(match[4])
    if length > MAX_BODY:
        raise FrameError(request_id, f"a request body is at most {MAX_BODY} bytes")
    return match[1], match[2], match[3], length, CONTENT_TYPES[match[5]], match[6]


def read_request(stream: BinaryIO) -> GuestRequest | None:
    """The next request on ``stream`` (None at end of stream); raises FrameError for a bad
    header (its body, if any, cannot be told apart and is read as further lines)."""
    line = stream.readline(MAX_LINE + 1)
    if not line:
        return None
    if not line.endswith(b"\n"):
        if len(line) > MAX_LINE:
            _skip_line(stream)
            raise FrameError("-", f"a request line is at most {MAX_LINE} bytes")
        return None  # the stream ended in the middle of a line
    request_id, method, path, length, content_type, token = parse_header(line)
    body = stream.read(length) if length else b""
    if len(body) < length:
        return None
    return GuestRequest(request_id, method, path, body, content_type, token)


def _skip_line(stream: BinaryIO) -> None:
    while True:
        chunk = stream.readline(MAX_LINE)
        if not chunk or chunk.endswith(b"\n"):
            return


def encode_answer(request_id: str, answer: GuestAnswer) -> bytes:
    return f"{request_id} {answer.status} {len(answer.body)}\n".encode() + answer.body


def error_answer(status: int, message: str) -> GuestAnswer:
    return GuestAnswer(status, json.dumps({"error": "guest_channel", "message": message}).encode())


class GuestRelay:
    """One VM's channel: connect to its socket (again after QEMU or the agent restarts)
    and answer requests until stopped."""

    def __init__(self, vm_id: str, socket_path: Path, forward: Forward) -> None:
        self.vm_id = vm_id
        self.socket_path = socket_path
        self.forward = forward
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self._thread = threading.Thread(target=self._run, name=f"gridvm-guest-{vm_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                    sock.connect(str(self.socket_path))
                    self._sock = sock
                    if self._stop.is_set():
                        return
                    self._serve(sock)
            except OSError:
                pass  # not there yet, or QEMU went away
            finally:
                self._sock = None
            self._stop.wait(RECONNECT_S)

    def _serve(self, sock: socket.socket) -> None:
        with sock.makefile("rb") as stream:
            while not self._stop.is_set():
                try:
                    request = read_request(stream)
                except FrameError as exc:
                    sock.sendall(encode_answer(exc.request_id, error_answer(400, str(exc))))
                    continue
                if request is None:
                    return
                try:
                    answer = self.forward(request)
                except Exception as exc:  # the server is away: tell the guest, keep serving
                    log.warning("guest request of VM %s not relayed: %s", self.vm_id, exc)
                    answer = error_answer(503, "the server cannot be reached; try again")
                sock.sendall(encode_answer(request.request_id, answer))


class GuestRelays:
    """The relays of the VMs that run on this host."""

    def __init__(self, forward: Forward) -> None:
        self.forward = forward
        self._relays: dict[str, GuestRelay] = {}

    def track(self, sockets: dict[str, Path]) -> None:
        """Relay exactly the VMs in ``sockets`` (VM id -> its guest.sock)."""
        for vm_id in list(self._relays):
            if vm_id not in sockets:
                self._relays.pop(vm_id).stop()
        for vm_id, path in sockets.items():
            if vm_id not in self._relays:
                relay = GuestRelay(vm_id, path, self.forward)
                self._relays[vm_id] = relay
                relay.start()

    def tracked(self) -> frozenset[str]:
        return frozenset(self._relays)

    def stop_all(self) -> None:
        for relay in self._relays.values():
            relay.stop()
        for relay in self._relays.values():
            relay.join(2.0)
        self._relays.clear()
