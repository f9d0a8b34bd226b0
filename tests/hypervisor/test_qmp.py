"""QmpClient error handling against sockets that are not (or not only) QEMU."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gridvm.common.errors import HypervisorError
from gridvm.hypervisor.qmp import QmpClient, QmpTimeout, QmpUnavailable


@pytest.fixture
def listening_socket(short_dir: Path) -> Iterator[Path]:
    """A unix socket that accepts connections (kernel backlog) but never greets."""
    path = short_dir / "mute.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(4)
    yield path
    server.close()


def test_missing_socket_is_a_clear_error(short_dir: Path) -> None:
    path = short_dir / "nothing.sock"
    with pytest.raises(QmpUnavailable, match="does not exist") as caught:
        QmpClient(path).connect()
    assert str(path) in str(caught.value)
    assert caught.value.hint is not None


def test_stale_socket_is_refused(short_dir: Path) -> None:
    path = short_dir / "stale.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))  # bound, never listening: what a dead QEMU leaves behind
    server.close()
    with pytest.raises(QmpUnavailable, match="refused the connection"):
        QmpClient(path).connect()


def test_silent_server_times_out(listening_socket: Path) -> None:
    started = time.monotonic()
    with pytest.raises(QmpTimeout, match=r"did not answer .* within 0.3 s") as caught:
        QmpClient(listening_socket, connect_timeout=0.3).connect()
    assert time.monotonic() - started < 2.0
    assert "one client at a time" in str(caught.value)


def test_commands_need_a_connection(short_dir: Path) -> None:
    with pytest.raises(HypervisorError, match="not connected"):
        QmpClient(short_dir / "x.sock").status()


def test_refuses_to_run_inside_an_event_loop(listening_socket: Path) -> None:
    async def inside() -> None:
        QmpClient(listening_socket).connect()

    with pytest.raises(HypervisorError, match="asyncio"):
        asyncio.run(inside())
