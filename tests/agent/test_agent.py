"""The agent's rounds and its start, against a scripted server and a fake QEMU."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path

import pytest

from gridvm.agent.agent import Agent
from gridvm.agent.link import ServerLink
from gridvm.agent.reconcile import LOST_WHILE_AWAY
from gridvm.common.config import AgentConfig
from gridvm.schemas.agent import (
    Assignment,
    DesiredState,
    EndCause,
    HostRegistration,
    LocalState,
    RegistrationOut,
    SyncRequest,
    SyncResponse,
)
from gridvm.schemas.vms import VmMode
from gridvm.schemas.volumes import VolumeAttachment
from tests.agent.helpers import FakeDriver, assignment, record


class FakeServer(ServerLink):
    def __init__(self) -> None:  # no HTTP
        self.assignments: list[Assignment] = []
        self.requests: list[SyncRequest] = []
        self.delete_volumes: list[str] = []

    def register(self, registration: HostRegistration) -> RegistrationOut:
        return RegistrationOut(host=registration.name, poll_interval_s=1.0)

    def sync(self, request: SyncRequest) -> SyncResponse:
        self.requests.append(request)
        return SyncResponse(
            generation=1,
            assignments=list(self.assignments),
            delete_volumes=list(self.delete_volumes),
        )

    def send_console(self, vm_id: str, offset: int, data: bytes) -> int:
        return offset + len(data)

    def download_blob(self, digest: str, target: Path) -> None:
        raise AssertionError("no downloads in these tests")

    def reported(self) -> dict[str, tuple[LocalState, int]]:
        return {r.vm_id: (r.state, r.boot) for r in self.requests[-1].vms}


@pytest.fixture
def agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Agent]:
    monkeypatch.setenv("GRIDVM_ACCEL", "tcg")
    config = AgentConfig(
        server_url="http://unused", token="t", data_dir=tmp_path / "d", host_name="h1"
    )
    agent = Agent(config, FakeServer())
    agent.machines.driver = FakeDriver()
    yield agent
    agent.cache.close()


def server(agent: Agent) -> FakeServer:
    assert isinstance(agent.link, FakeServer)
    return agent.link


def driver(agent: Agent) -> FakeDriver:
    assert isinstance(agent.machines.driver, FakeDriver)
    return agent.machines.driver


def test_terminating_a_pending_start_of_a_stopped_vm_ends_it(agent: Agent) -> None:
    was = assignment(mode=VmMode.single, desired=DesiredState.stopped, boot=1)
    agent.records.save(record(was, LocalState.stopped, cause=EndCause.poweroff))
    # Started (boot 2), still pending: the host keeps the disk, runs nothing.
    server(agent).assignments = [
        assignment(mode=VmMode.single, desired=DesiredState.stopped, boot=2)
    ]
    agent.round()
    agent.round()
    assert server(agent).reported() == {"vm-1": (LocalState.stopped, 1)}
    # Then terminated.
    server(agent).assignments = [
        assignment(mode=VmMode.single, desired=DesiredState.deleted, boot=2)
    ]
    agent.round()
    agent.round()
    assert server(agent).reported() == {"vm-1": (LocalState.deleted, 2)}


def test_one_hung_qemu_does_not_stop_the_round(agent: Agent) -> None:
    hung, fine = assignment("hung"), assignment("fine", desired=DesiredState.suspended)
    for a in (hung, fine):
        agent.records.save(record(a, LocalState.running))
        driver(agent).states[a.vm_id] = "running"
    driver(agent).hung.add("hung")
    server(agent).assignments = [hung.model_copy(update={"desired": DesiredState.suspended}), fine]
    agent.round()
    assert ("pause", "fine") in driver(agent).calls
    assert ("pause", "hung") not in driver(agent).calls
    assert server(agent).reported() == {
        "hung": (LocalState.running, 1),
        "fine": (LocalState.running, 1),
    }


def test_vms_being_set_up_are_reported_but_left_alone(agent: Agent) -> None:
    a = assignment()
    agent.records.save(record(a, LocalState.staging))
    pending: Future[None] = Future()
    agent._busy[a.vm_id] = pending  # a download is under way
    server(agent).assignments = [a]
    agent.round()
    assert server(agent).reported() == {"vm-1": (LocalState.staging, 1)}
    assert driver(agent).calls == []
    assert agent.records.load_all()[a.vm_id].state == LocalState.staging
    pending.set_result(None)


def test_adopt_squares_the_records_with_the_host(agent: Agent) -> None:
    booting = assignment("booting", mode=VmMode.single)
    lost = assignment("lost", mode=VmMode.single)
    starting = assignment("starting", mode=VmMode.single)
    hung = assignment("hung")
    agent.records.save(record(booting, LocalState.booting))
    agent.records.save(record(lost, LocalState.running))
    agent.records.save(record(starting, LocalState.staging))
    agent.records.save(record(hung, LocalState.running))
    (agent.records.dir_of("starting") / "disk.qcow2").write_bytes(b"a kept disk")
    driver(agent).states.update(booting="running", hung="running")
    driver(agent).hung.add("hung")
    agent.adopt()
    records = agent.records.load_all()
    assert {vm_id: r.state for vm_id, r in records.items()} == {
        "booting": LocalState.running,
        "lost": LocalState.stopped,
        "starting": LocalState.stopped,
        "hung": LocalState.running,
    }
    assert records["lost"].detail == LOST_WHILE_AWAY
    assert (agent.records.dir_of("starting") / "disk.qcow2").exists()
    assert ("kill", "starting") in driver(agent).calls


def test_a_vm_with_an_unreadable_record_is_left_alone(agent: Agent) -> None:
    a = assignment(mode=VmMode.single)
    agent.records.dir_of(a.vm_id).mkdir(parents=True)
    (agent.records.dir_of(a.vm_id) / "disk.qcow2").write_bytes(b"a kept disk")
    (agent.records.dir_of(a.vm_id) / "record.json").write_text("{")
    server(agent).assignments = [a]
    agent.round()
    agent.wait_idle()
    assert (agent.records.dir_of(a.vm_id) / "disk.qcow2").read_bytes() == b"a kept disk"
    assert server(agent).reported() == {}


def test_volumes_the_server_deletes_go_from_the_host_and_are_reported(agent: Agent) -> None:
    volumes = agent.machines.volumes
    old = volumes.ensure("vol-old", 1024**2)
    used = volumes.ensure("vol-used", 1024**2)
    a = assignment().model_copy(
        update={"volumes": [VolumeAttachment(id="vol-used", size_bytes=1024**2, serial="s")]}
    )
    agent.records.save(record(a, LocalState.running))
    driver(agent).states[a.vm_id] = "running"
    server(agent).assignments = [a]
    server(agent).delete_volumes = ["vol-old", "vol-used"]
    agent.round()
    assert not old.exists()
    assert used.exists()  # a VM of this host runs with it: kept, not reported
    server(agent).delete_volumes = []
    agent.round()
    assert server(agent).requests[-1].deleted_volumes == ["vol-old"]
    agent.round()
    assert server(agent).requests[-1].deleted_volumes == []


def test_each_sync_carries_the_hosts_load_as_the_kernel_tells_it(agent: Agent) -> None:
    agent.round()
    load = server(agent).requests[-1].load
    assert load is not None
    kernel = Path("/proc/loadavg").read_text().split()
    # The averages move slowly: within a small margin of what /proc said just now.
    assert abs(load.load_1m - float(kernel[0])) < 1.0
    assert abs(load.load_15m - float(kernel[2])) < 1.0
    meminfo = Path("/proc/meminfo").read_text()
    total_mb = int(meminfo.split("MemTotal:")[1].split()[0]) // 1024
    assert load.memory_available_mb is not None and 0 < load.memory_available_mb <= total_mb
