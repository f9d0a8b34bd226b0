"""VMs and deployments through the SDK (no agent: VMs stay pending)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gridvm.client import (
    Client,
    InvalidRequest,
    NotFoundError,
    WaitTimeout,
    wait_for_vms,
)
from gridvm.schemas.vms import VmCreate, VmMode, VmOut, VmState


def wait_for_reason(gv: Client, vm_id: str, text: str, timeout: float = 10) -> VmOut:
    deadline = time.monotonic() + timeout
    while True:
        vm = gv.vms.get(vm_id)
        if vm.pending_reason and text in vm.pending_reason:
            return vm
        if time.monotonic() > deadline:
            raise AssertionError(f"pending reason still {vm.pending_reason!r}")
        time.sleep(0.1)


def test_a_request_for_three_vms_makes_a_pending_deployment(gv: Client, qcow2: Path) -> None:
    gv.images.upload(qcow2, "base")
    deployment = gv.vms.create(image="base", count=3, memory_mb=128, walltime_s=600)
    assert deployment.count == 3
    assert deployment.states == {"pending": 3}
    assert [vm.name for vm in deployment.vms] == ["base-0", "base-1", "base-2"]
    vm = wait_for_reason(gv, deployment.vms[0].id, "no host")
    assert (vm.state, vm.memory_mb, vm.walltime_s) == (VmState.pending, 128, 600)

    assert [v.id for v in gv.vms.list(deployment=deployment.id)] == [v.id for v in deployment.vms]
    assert len(gv.vms.list(state="pending")) == 3
    assert gv.vms.list(state=VmState.running) == []
    assert [d.id for d in gv.deployments.list()] == [deployment.id]
    assert gv.deployments.get(deployment.id).count == 3
    assert gv.vms.console(vm.id) == b""


def test_a_request_object_works_like_keywords(gv: Client, qcow2: Path) -> None:
    gv.images.upload(qcow2, "base")
    request = VmCreate(image="base", name="job", mode=VmMode.single)
    deployment = gv.vms.create(request, vcpus=2)
    vm = deployment.vms[0]
    assert (vm.name, vm.mode, vm.vcpus) == ("job", VmMode.single, 2)


def test_impossible_requests_are_refused(gv: Client, qcow2: Path) -> None:
    with pytest.raises(NotFoundError, match="no image 'nothing'"):
        gv.vms.create(image="nothing")
    gv.images.upload(qcow2, "base")
    with pytest.raises(InvalidRequest, match="cannot start 0 VMs"):
        gv.vms.create(image="base", count=0)
    with pytest.raises(InvalidRequest, match="outside the site's limit") as caught:
        gv.vms.create(image="base", memory_mb=10 * 1024 * 1024)
    assert caught.value.hint
    assert gv.vms.list() == []


def test_waiting_times_out_with_the_reason(gv: Client, qcow2: Path) -> None:
    gv.images.upload(qcow2, "base")
    deployment = gv.vms.create(image="base", count=2)
    wait_for_reason(gv, deployment.vms[0].id, "no host")
    seen: list[list[VmOut]] = []
    started = time.monotonic()
    with pytest.raises(TimeoutError) as caught:
        wait_for_vms(
            gv, [vm.id for vm in deployment.vms], timeout=0.5, poll=0.1, on_progress=seen.append
        )
    assert time.monotonic() - started < 5
    error = caught.value
    assert isinstance(error, WaitTimeout)
    assert "2 of 2 VMs did not end within" in error.message
    assert "2 pending" in error.message
    assert "no host" in error.message
    assert [vm.state for vm in error.vms] == [VmState.pending] * 2
    assert seen and all(len(batch) == 2 for batch in seen)


def test_waiting_ends_when_the_vms_end(gv: Client, qcow2: Path) -> None:
    gv.images.upload(qcow2, "base")
    deployment = gv.vms.create(image="base", count=3)
    for vm in deployment.vms:
        assert gv.vms.stop(vm.id).state == VmState.cancelled
    vms = wait_for_vms(gv, deployment.vms, timeout=10, poll=0.1)
    assert [vm.state for vm in vms] == [VmState.cancelled] * 3
    assert [vm.id for vm in vms] == [vm.id for vm in deployment.vms]
    assert gv.deployments.get(deployment.id).states == {"cancelled": 3}


def test_hosts_none_yet(gv: Client) -> None:
    assert gv.hosts.list() == []
    with pytest.raises(NotFoundError, match="no host 'nowhere'"):
        gv.hosts.get("nowhere")


def test_waiting_for_other_states(gv: Client, qcow2: Path) -> None:
    gv.images.upload(qcow2, "base")
    deployment = gv.vms.create(image="base")
    vms = wait_for_vms(gv, [deployment.vms[0].id], until={"pending"}, timeout=5)
    assert [vm.state for vm in vms] == [VmState.pending]
    with pytest.raises(WaitTimeout, match="1 of 1 VMs did not reach running within"):
        wait_for_vms(gv, deployment.vms, until={VmState.running}, timeout=0.2, poll=0.1)


def test_cancelling_a_deployment_ends_its_pending_vms(gv: Client, qcow2: Path) -> None:
    gv.images.upload(qcow2, "base")
    deployment = gv.vms.create(image="base", count=3)
    other = gv.vms.create(image="base")
    gv.vms.stop(deployment.vms[0].id)
    after = gv.deployments.cancel(deployment.id)
    assert after.id == deployment.id
    assert after.states == {"cancelled": 3}
    assert [vm.state for vm in after.vms] == [VmState.cancelled] * 3
    assert gv.vms.get(other.vms[0].id).state == VmState.pending
    assert gv.deployments.cancel(deployment.id).states == {"cancelled": 3}
    with pytest.raises(NotFoundError, match="no deployment 'dep-nothing'"):
        gv.deployments.cancel("dep-nothing")


def test_vms_come_in_pages_with_the_total_and_several_states(gv: Client, qcow2: Path) -> None:
    gv.images.upload(qcow2, "base")
    made = gv.vms.create(image="base", count=5, memory_mb=128, name="scan")
    gv.vms.stop(made.vms[0].id)  # pending, so cancelled
    first = gv.vms.page(limit=2)
    assert ([vm.name for vm in first.vms], first.total) == (["scan-0", "scan-1"], 5)
    last = gv.vms.page(limit=2, offset=4)
    assert ([vm.name for vm in last.vms], last.total) == (["scan-4"], 5)
    waiting = gv.vms.page(states=[VmState.pending], limit=1, offset=1)
    assert ([vm.name for vm in waiting.vms], waiting.total) == (["scan-2"], 4)
    both = gv.vms.page(state="cancelled", states=["pending"], deployment=made.id)
    assert both.total == 5 and len(both.vms) == 5
    # The list call of old still works, and takes the new arguments too.
    assert [vm.name for vm in gv.vms.list(state="cancelled")] == ["scan-0"]
    assert [vm.name for vm in gv.vms.list(limit=1, offset=3)] == ["scan-3"]
    with pytest.raises(InvalidRequest, match="a page of 1001 VMs is not possible"):
        gv.vms.page(limit=1001)


def test_runs_of_a_vm_that_has_not_run_and_of_no_vm(gv: Client, qcow2: Path) -> None:
    gv.images.upload(qcow2, "base")
    vm = gv.vms.create(image="base", memory_mb=128).vms[0]
    assert gv.vms.runs(vm.id) == []
    assert (gv.vms.get(vm.id).runs, gv.vms.list()[0].runs) == (0, None)
    with pytest.raises(NotFoundError, match="no VM 'vm-nosuch'"):
        gv.vms.runs("vm-nosuch")
