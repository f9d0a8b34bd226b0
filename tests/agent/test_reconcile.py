"""The agent's decisions over literal records and runtime states (no QEMU)."""

from __future__ import annotations

from gridvm.agent.reconcile import Do, Runtime, plan
from gridvm.agent.records import VmRecord
from gridvm.schemas.agent import Assignment, DesiredState, EndCause, LocalState
from gridvm.schemas.vms import VmMode


def assignment(
    vm_id: str = "vm-1",
    desired: DesiredState = DesiredState.running,
    attempt: int = 1,
    mode: VmMode = VmMode.multi,
) -> Assignment:
    return Assignment(
        vm_id=vm_id,
        attempt=attempt,
        desired=desired,
        mode=mode,
        vcpus=1,
        memory_mb=256,
        disk_bytes=None,
        image_digest="sha256:" + "a" * 64,
        kernel_digest=None,
        initrd_digest=None,
        kernel_cmdline=None,
        hostname="h",
        user_data=None,
        stop_grace_s=30,
    )


def record(a: Assignment, state: LocalState, stop_at: float | None = None) -> VmRecord:
    return VmRecord(a.vm_id, a.attempt, a, state, stop_requested_at=stop_at)


def dos(actions: list) -> list[tuple[Do, str]]:  # type: ignore[type-arg]
    return [(x.do, x.vm_id) for x in actions]


def test_new_assignment_starts_the_vm() -> None:
    a = assignment()
    assert dos(plan({a.vm_id: a}, {}, {}, frozenset(), 0)) == [(Do.start, "vm-1")]


def test_running_vm_that_is_wanted_running_is_left_alone() -> None:
    a = assignment()
    assert (
        plan(
            {a.vm_id: a},
            {a.vm_id: record(a, LocalState.running)},
            {a.vm_id: Runtime.running},
            frozenset(),
            0,
        )
        == []
    )


def test_vm_no_longer_assigned_is_forgotten() -> None:
    a = assignment()
    assert dos(plan({}, {a.vm_id: record(a, LocalState.running)}, {}, frozenset(), 0)) == [
        (Do.forget, "vm-1")
    ]


def test_busy_vm_is_left_alone() -> None:
    a = assignment()
    assert plan({}, {a.vm_id: record(a, LocalState.staging)}, {}, frozenset({a.vm_id}), 0) == []


def test_guest_power_off_finishes_the_vm() -> None:
    a = assignment()
    actions = plan(
        {a.vm_id: a},
        {a.vm_id: record(a, LocalState.running)},
        {a.vm_id: Runtime.shutdown},
        frozenset(),
        0,
    )
    assert [(x.do, x.cause) for x in actions] == [(Do.finish, EndCause.poweroff)]


def test_qemu_gone_is_a_crash() -> None:
    a = assignment()
    actions = plan(
        {a.vm_id: a},
        {a.vm_id: record(a, LocalState.running)},
        {a.vm_id: Runtime.gone},
        frozenset(),
        0,
    )
    assert [(x.do, x.cause) for x in actions] == [(Do.finish, EndCause.crashed)]


def test_stop_sends_acpi_then_forces_after_the_grace_period() -> None:
    a = assignment(desired=DesiredState.stopped)
    live = {a.vm_id: Runtime.running}
    first = plan({a.vm_id: a}, {a.vm_id: record(a, LocalState.running)}, live, frozenset(), 100.0)
    assert dos(first) == [(Do.powerdown, "vm-1")]
    waiting = plan(
        {a.vm_id: a},
        {a.vm_id: record(a, LocalState.stopping, stop_at=100.0)},
        live,
        frozenset(),
        110.0,
    )
    assert waiting == []
    late = plan(
        {a.vm_id: a},
        {a.vm_id: record(a, LocalState.stopping, stop_at=100.0)},
        live,
        frozenset(),
        130.0,
    )
    assert [(x.do, x.cause) for x in late] == [(Do.kill, EndCause.killed)]


def test_power_off_after_a_stop_request_counts_as_stopped() -> None:
    a = assignment(desired=DesiredState.stopped)
    actions = plan(
        {a.vm_id: a},
        {a.vm_id: record(a, LocalState.stopping, stop_at=1.0)},
        {a.vm_id: Runtime.shutdown},
        frozenset(),
        2.0,
    )
    assert [(x.do, x.cause) for x in actions] == [(Do.finish, EndCause.stopped)]


def test_suspend_and_resume_follow_the_wish() -> None:
    a = assignment(desired=DesiredState.suspended)
    assert dos(
        plan(
            {a.vm_id: a},
            {a.vm_id: record(a, LocalState.running)},
            {a.vm_id: Runtime.running},
            frozenset(),
            0,
        )
    ) == [(Do.pause, "vm-1")]
    b = assignment(desired=DesiredState.running)
    assert dos(
        plan(
            {b.vm_id: b},
            {b.vm_id: record(b, LocalState.suspended)},
            {b.vm_id: Runtime.paused},
            frozenset(),
            0,
        )
    ) == [(Do.resume, "vm-1")]


def test_delete_wins_over_everything_once() -> None:
    a = assignment(desired=DesiredState.deleted)
    assert dos(
        plan(
            {a.vm_id: a},
            {a.vm_id: record(a, LocalState.running)},
            {a.vm_id: Runtime.running},
            frozenset(),
            0,
        )
    ) == [(Do.delete, "vm-1")]
    assert plan({a.vm_id: a}, {a.vm_id: record(a, LocalState.deleted)}, {}, frozenset(), 0) == []


def test_stopped_single_vm_restarts_from_its_kept_disk() -> None:
    a = assignment(mode=VmMode.single)
    assert dos(
        plan({a.vm_id: a}, {a.vm_id: record(a, LocalState.stopped)}, {}, frozenset(), 0)
    ) == [(Do.restart, "vm-1")]
    kept = assignment(mode=VmMode.single, desired=DesiredState.stopped)
    assert (
        plan({kept.vm_id: kept}, {kept.vm_id: record(kept, LocalState.stopped)}, {}, frozenset(), 0)
        == []
    )


def test_a_new_attempt_replaces_the_old_one() -> None:
    old = assignment(attempt=1)
    new = assignment(attempt=2)
    actions = plan(
        {new.vm_id: new},
        {old.vm_id: record(old, LocalState.running)},
        {old.vm_id: Runtime.running},
        frozenset(),
        0,
    )
    assert dos(actions) == [(Do.forget, "vm-1"), (Do.start, "vm-1")]


def test_assignment_that_is_stopped_before_it_ever_ran_is_noted_as_ended() -> None:
    a = assignment(desired=DesiredState.stopped)
    actions = plan({a.vm_id: a}, {}, {}, frozenset(), 0)
    assert [(x.do, x.state, x.cause) for x in actions] == [
        (Do.note, LocalState.ended, EndCause.stopped)
    ]
