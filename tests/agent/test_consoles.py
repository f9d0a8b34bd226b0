"""Shipping console output over real files, to a server that behaves as gridvm's does."""

from __future__ import annotations

from pathlib import Path

from gridvm.agent.consoles import CHUNK, ship_console
from gridvm.agent.records import RecordStore, VmRecord
from gridvm.schemas.agent import LocalState
from tests.agent.helpers import assignment, record


class Server:
    """Takes data only at its offset; beyond ``cap`` it drops data but still counts it."""

    def __init__(self, cap: int = 1 << 40) -> None:
        self.log = bytearray()
        self.offset = 0
        self.cap = cap

    def send(self, offset: int, data: bytes) -> int:
        if offset != self.offset:
            return self.offset
        self.log += data[: max(0, self.cap - len(self.log))]
        self.offset += len(data)
        return self.offset


def qemu_writes(path: Path, data: bytes) -> None:
    with path.open("ab") as f:  # as QEMU does: O_APPEND
        f.write(data)


def ship_all(path: Path, r: VmRecord, server: Server, store: RecordStore | None, keep: int) -> None:
    for _ in range(100):
        before = server.offset
        server.offset = ship_console(
            path, r, server.offset, server.send, store.save if store else None, keep
        )
        if server.offset == before:
            return


def test_a_large_log_is_emptied_once_shipped_and_output_goes_on(tmp_path: Path) -> None:
    store = RecordStore(tmp_path)
    r = record(assignment(), LocalState.running)
    store.save(r)
    path = store.dir_of(r.vm_id) / "console.log"
    server = Server()
    written = bytearray()
    for i in range(5):
        chunk = bytes([65 + i]) * (CHUNK + 1000)
        qemu_writes(path, chunk)
        written += chunk
        ship_all(path, r, server, store, keep=2 * CHUNK)
    assert bytes(server.log) == bytes(written)
    assert path.stat().st_size <= 2 * CHUNK + 1000  # emptied at least once
    assert r.console_base > 0
    # The base is on disk: a restarted agent goes on where this one stopped.
    again = RecordStore(tmp_path).load_all()[r.vm_id]
    assert again.console_base == r.console_base
    qemu_writes(path, b"after the restart\n")
    ship_all(path, again, server, store, keep=2 * CHUNK)
    assert bytes(server.log) == bytes(written) + b"after the restart\n"


def test_a_busy_vms_log_is_shipped_but_not_emptied(tmp_path: Path) -> None:
    r = record(assignment(), LocalState.booting)
    path = tmp_path / "console.log"
    qemu_writes(path, b"x" * (3 * CHUNK))
    server = Server()
    ship_all(path, r, server, None, keep=CHUNK)
    assert server.offset == 3 * CHUNK and path.stat().st_size == 3 * CHUNK
    assert r.console_base == 0


def test_a_full_server_log_does_not_stop_the_agent(tmp_path: Path) -> None:
    store = RecordStore(tmp_path)
    r = record(assignment(), LocalState.running)
    store.save(r)
    path = store.dir_of(r.vm_id) / "console.log"
    qemu_writes(path, b"y" * (3 * CHUNK))
    server = Server(cap=CHUNK)
    ship_all(path, r, server, store, keep=CHUNK)
    assert server.offset == 3 * CHUNK and len(server.log) == CHUNK
    assert path.stat().st_size == 0


def test_agent_that_died_between_emptying_and_saving_sends_the_new_output(
    tmp_path: Path,
) -> None:
    store = RecordStore(tmp_path)
    r = record(assignment(), LocalState.running)
    store.save(r)
    path = store.dir_of(r.vm_id) / "console.log"
    server = Server()
    server.log += b"z" * 5000  # all of the old file, shipped; the base never got saved
    server.offset = 5000
    qemu_writes(path, b"new output\n")  # written after the truncation
    ship_all(path, r, server, store, keep=CHUNK)
    assert bytes(server.log) == b"z" * 5000 + b"new output\n" and server.offset == 5011
    assert store.load_all()[r.vm_id].console_base == 5000
