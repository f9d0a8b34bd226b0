"""The guest channel relay, against a real unix socket in QEMU's place (QEMU listens on
guest.sock; the agent connects)."""

from __future__ import annotations

import io
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from gridvm.agent.guest_relay import (
    MAX_BODY,
    FrameError,
    GuestAnswer,
    GuestRelay,
    GuestRelays,
    GuestRequest,
    encode_answer,
    read_request,
)

TOKEN = "gvt.vm-1.1.1.abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ"


def test_a_request_frame_is_read_with_its_body() -> None:
    stream = io.BytesIO(f"7 PUT /guest/data/k 5 text {TOKEN}\nhello".encode())
    request = read_request(stream)
    assert request == GuestRequest(
        "7", "PUT", "/guest/data/k", b"hello", "text/plain; charset=utf-8", TOKEN
    )
    assert read_request(stream) is None  # end of stream


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (f"1 PATCH /guest/self 0 json {TOKEN}", "malformed"),
        (f"1 GET /api/v1/vms 0 json {TOKEN}", "malformed"),  # only the guest API
        (f"1 GET /guest/../vms 0 json {TOKEN}", "'..'"),
        (f"1 GET /guest/%2E%2e/vms 0 json {TOKEN}", "'..'"),
        (f"1 PUT /guest/data/k {MAX_BODY + 1} text {TOKEN}", "at most"),
        ("1 GET /guest/self 0 json token with spaces", "malformed"),
        (f"1 GET /guest/self 0 xml {TOKEN}", "malformed"),
    ],
)
def test_bad_request_lines_are_refused(line: str, message: str) -> None:
    with pytest.raises(FrameError, match=message) as caught:
        read_request(io.BytesIO(line.encode() + b"\n"))
    assert caught.value.request_id == "1"


def test_an_answer_frame_names_its_request() -> None:
    assert encode_answer("9", GuestAnswer(204, b"")) == b"9 204 0\n"
    assert encode_answer("x1", GuestAnswer(200, b"ok")) == b"x1 200 2\nok"


class FakeQemu:
    """The host end of a virtio-serial port: a listening unix socket, one client at a time."""

    def __init__(self, path: Path) -> None:
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(path))
        self.listener.listen(1)
        self.listener.settimeout(10)

    def accept(self) -> socket.socket:
        conn, _ = self.listener.accept()
        conn.settimeout(10)
        return conn

    def close(self) -> None:
        self.listener.close()


def answer_of(conn: socket.socket) -> tuple[str, int, bytes]:
    stream = conn.makefile("rb")
    rid, status, length = stream.readline().decode().split()
    return rid, int(status), stream.read(int(length))


@pytest.fixture
def qemu(tmp_path: Path) -> Iterator[FakeQemu]:
    fake = FakeQemu(tmp_path / "guest.sock")
    yield fake
    fake.close()


def test_the_relay_forwards_requests_and_answers_in_order(qemu: FakeQemu, tmp_path: Path) -> None:
    seen: list[GuestRequest] = []

    def forward(request: GuestRequest) -> GuestAnswer:
        seen.append(request)
        return GuestAnswer(200, b'{"ok": true}')

    relay = GuestRelay("vm-1", tmp_path / "guest.sock", forward)
    relay.start()
    conn = qemu.accept()
    conn.sendall(f"1 POST /guest/ready 2 json {TOKEN}\n{{}}".encode())
    assert answer_of(conn) == ("1", 200, b'{"ok": true}')
    conn.sendall(f"?? nonsense\n2 GET /guest/self 0 json {TOKEN}\n".encode())
    stream = conn.makefile("rb")
    first = stream.readline().decode().split()
    assert first[:2] == ["-", "400"] and b"malformed" in stream.read(int(first[2]))
    assert stream.readline() == b"2 200 12\n"
    assert [(r.method, r.path, r.body, r.token) for r in seen] == [
        ("POST", "/guest/ready", b"{}", TOKEN),
        ("GET", "/guest/self", b"", TOKEN),
    ]
    relay.stop()
    relay.join(5)


def test_the_relay_reconnects_and_reports_an_unreachable_server(
    qemu: FakeQemu, tmp_path: Path
) -> None:
    calls = threading.Event()

    def forward(request: GuestRequest) -> GuestAnswer:
        calls.set()
        raise OSError("connection refused")

    relays = GuestRelays(forward)
    relays.track({"vm-1": tmp_path / "guest.sock"})
    first = qemu.accept()
    first.close()  # QEMU restarted, or the guest port was reset
    second = qemu.accept()
    second.sendall(f"5 GET /guest/self 0 json {TOKEN}\n".encode())
    rid, status, body = answer_of(second)
    assert (rid, status) == ("5", 503) and b"cannot be reached" in body
    assert calls.is_set()
    relays.track({})  # the VM is gone: its relay stops
    assert relays.tracked() == frozenset()
    relays.stop_all()
