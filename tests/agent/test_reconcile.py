"""The agent's decisions over literal records and runtime states (no QEMU)."""

from __future__ import annotations

from gridvm.agent.reconcile import (
    INTERRUPTED_START,
    LOST_WHILE_AWAY,
    RESTARTED_WHILE_STARTING,
    Action,
    Do,
    Runtime,
    adoption,
    plan,
)
from gridvm.schemas.agent import DesiredState, EndCause, LocalState
from gridvm.schemas.vms import VmMode
from tests.agent.helpers import assignment, record


def dos(actions: list[Action]) -> list[tuple[Do, str]]:
    return [(x.do, x.vm_id) for x in actions]


def ends(actions: list[Action]) -> list[tuple[Do, LocalState | None, EndCause | None]]:
    return [(x.do, x.state, x.cause) for x in actions]


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


def test_an_ended_qemu_keeps_a_single_mode_disk_and_drops_a_multi_mode_one() -> None:
    for mode, state in ((VmMode.single, LocalState.stopped), (VmMode.multi, LocalState.ended)):
        a = assignment(mode=mode)
        for seen, cause in (
            (Runtime.gone, EndCause.crashed),
            (Runtime.shutdown, EndCause.poweroff),
        ):
            actions = plan(
                {a.vm_id: a}, {a.vm_id: record(a, LocalState.running)}, {a.vm_id: seen}, set(), 0
            )
            assert ends(actions) == [(Do.finish, state, cause)]
        stop = assignment(mode=mode, desired=DesiredState.stopped)
        late = plan(
            {stop.vm_id: stop},
            {stop.vm_id: record(stop, LocalState.stopping, stop_at=0.0)},
            {stop.vm_id: Runtime.running},
            set(),
            100.0,
        )
        assert ends(late) == [(Do.kill, state, EndCause.killed)]


# --- boot numbers: every action on a VM carries the assignment it answers ------------------


def test_terminating_a_pending_start_of_a_stopped_vm_acts_under_the_new_boot() -> None:
    # The user started the stopped VM (boot 1 -> 2); it stayed pending; then terminated it.
    was = assignment(mode=VmMode.single, desired=DesiredState.stopped, boot=1)
    now = assignment(mode=VmMode.single, desired=DesiredState.deleted, boot=2)
    actions = plan({now.vm_id: now}, {was.vm_id: record(was, LocalState.stopped)}, {}, set(), 0)
    assert dos(actions) == [(Do.delete, "vm-1")]
    assert actions[0].assignment is not None and actions[0].assignment.boot == 2


def test_a_stopped_record_keeps_its_boot_while_a_start_is_pending() -> None:
    # Reported as "stopped" under the new boot, it would undo the start on the server.
    was = assignment(mode=VmMode.single, desired=DesiredState.stopped, boot=1)
    now = assignment(mode=VmMode.single, desired=DesiredState.stopped, boot=2)
    kept = record(was, LocalState.stopped, cause=EndCause.poweroff)
    assert plan({now.vm_id: now}, {was.vm_id: kept}, {}, set(), 0) == []
    placed = assignment(mode=VmMode.single, desired=DesiredState.running, boot=2)
    actions = plan({now.vm_id: placed}, {was.vm_id: kept}, {}, set(), 0)
    assert dos(actions) == [(Do.restart, "vm-1")] and actions[0].assignment == placed


def test_a_live_action_carries_the_assignment() -> None:
    a = assignment(desired=DesiredState.stopped, boot=3)
    actions = plan(
        {a.vm_id: a}, {a.vm_id: record(a, LocalState.running)}, {a.vm_id: Runtime.running}, set(), 0
    )
    assert [x.assignment for x in actions] == [a]


# --- never run yet ---------------------------------------------------------------------------


def test_single_mode_vm_stopped_before_it_ever_ran_is_noted_as_stopped() -> None:
    a = assignment(desired=DesiredState.stopped, mode=VmMode.single)
    actions = plan({a.vm_id: a}, {}, {}, set(), 0)
    assert ends(actions) == [(Do.note, LocalState.stopped, EndCause.stopped)]
    # The user starts it later: the (diskless) stopped record boots.
    b = assignment(desired=DesiredState.running, mode=VmMode.single, boot=2)
    assert dos(plan({b.vm_id: b}, {a.vm_id: record(a, LocalState.stopped)}, {}, set(), 0)) == [
        (Do.restart, "vm-1")
    ]


# --- what QEMU says against what the record says -------------------------------------------


def test_record_follows_what_qemu_does() -> None:
    a = assignment()
    cases = [
        (LocalState.booting, Runtime.running, LocalState.running),
        (LocalState.suspended, Runtime.running, LocalState.running),
        (LocalState.running, Runtime.paused, None),  # resumed instead: desired is running
    ]
    for state, seen, noted in cases:
        actions = plan({a.vm_id: a}, {a.vm_id: record(a, state)}, {a.vm_id: seen}, set(), 0)
        if noted is None:
            assert dos(actions) == [(Do.resume, "vm-1")]
        else:
            assert ends(actions) == [(Do.note, noted, None)]
    s = assignment(desired=DesiredState.suspended)
    actions = plan(
        {s.vm_id: s}, {s.vm_id: record(s, LocalState.booting)}, {s.vm_id: Runtime.paused}, set(), 0
    )
    assert ends(actions) == [(Do.note, LocalState.suspended, None)]


def test_a_start_that_died_half_way_is_ended_and_keeps_a_single_mode_disk() -> None:
    single = assignment(mode=VmMode.single)
    multi = assignment(vm_id="vm-2")
    records = {
        single.vm_id: record(single, LocalState.staging),
        multi.vm_id: record(multi, LocalState.staging),
    }
    wanted = {single.vm_id: single, multi.vm_id: multi}
    actions = plan(wanted, records, {}, set(), 0, disks={"vm-1", "vm-2"})
    assert [(x.vm_id, x.do, x.state, x.cause, x.detail) for x in actions] == [
        ("vm-1", Do.finish, LocalState.stopped, EndCause.start_failed, INTERRUPTED_START),
        ("vm-2", Do.finish, LocalState.failed, EndCause.start_failed, INTERRUPTED_START),
    ]
    # While the start is still under way, nothing.
    assert plan(wanted, records, {}, {"vm-1", "vm-2"}, 0) == []


# --- a QEMU whose monitor does not answer -----------------------------------------------------


def test_hung_vm_gets_no_actions_but_can_still_be_stopped_deleted_or_forgotten() -> None:
    a = assignment()
    records = {a.vm_id: record(a, LocalState.running)}
    hung = {a.vm_id: Runtime.hung}
    assert plan({a.vm_id: a}, records, hung, set(), 0) == []
    suspend = assignment(desired=DesiredState.suspended)
    assert plan({a.vm_id: suspend}, records, hung, set(), 0) == []
    stop = assignment(desired=DesiredState.stopped)
    assert dos(plan({a.vm_id: stop}, records, hung, set(), 0)) == [(Do.powerdown, "vm-1")]
    stopping = {a.vm_id: record(stop, LocalState.stopping, stop_at=0.0)}
    assert ends(plan({a.vm_id: stop}, stopping, hung, set(), 100.0)) == [
        (Do.kill, LocalState.ended, EndCause.killed)
    ]
    delete = assignment(desired=DesiredState.deleted)
    assert dos(plan({a.vm_id: delete}, records, hung, set(), 0)) == [(Do.delete, "vm-1")]
    assert dos(plan({}, records, hung, set(), 0)) == [(Do.forget, "vm-1")]


# --- adoption: squaring the records with the host after an agent restart ---------------------


def test_adoption_ends_a_start_the_agent_died_in() -> None:
    single = assignment("s-disk", mode=VmMode.single)
    bare = assignment("s-bare", mode=VmMode.single)
    multi = assignment("m-disk")
    records = {a.vm_id: record(a, LocalState.staging) for a in (single, bare, multi)}
    actions = adoption(records, {}, {"s-disk", "m-disk"})
    assert [(x.vm_id, x.do, x.state, x.cause, x.detail) for x in actions] == [
        ("s-disk", Do.finish, LocalState.stopped, EndCause.start_failed, RESTARTED_WHILE_STARTING),
        ("s-bare", Do.finish, LocalState.failed, EndCause.start_failed, RESTARTED_WHILE_STARTING),
        ("m-disk", Do.finish, LocalState.failed, EndCause.start_failed, RESTARTED_WHILE_STARTING),
    ]


def test_adoption_marks_live_vms_as_qemu_finds_them() -> None:
    a = assignment
    cases = [
        # state, runtime -> the action's (do, state, cause), or None
        (a("boot-run"), LocalState.booting, Runtime.running, (Do.note, LocalState.running, None)),
        (a("run-run"), LocalState.running, Runtime.running, None),
        (
            a("run-paused"),
            LocalState.running,
            Runtime.paused,
            (Do.note, LocalState.suspended, None),
        ),
        (a("susp-run"), LocalState.suspended, Runtime.running, (Do.note, LocalState.running, None)),
        (a("susp-paused"), LocalState.suspended, Runtime.paused, None),
        (a("stopping-run"), LocalState.stopping, Runtime.running, None),
        (a("run-hung"), LocalState.running, Runtime.hung, None),
        (
            a("run-off"),
            LocalState.running,
            Runtime.shutdown,
            (Do.finish, LocalState.ended, EndCause.poweroff),
        ),
        (
            a("single-off", mode=VmMode.single),
            LocalState.suspended,
            Runtime.shutdown,
            (Do.finish, LocalState.stopped, EndCause.poweroff),
        ),
    ]
    records = {x.vm_id: record(x, state) for x, state, _, _ in cases}
    runtime = {x.vm_id: seen for x, _, seen, _ in cases}
    got = {x.vm_id: (x.do, x.state, x.cause) for x in adoption(records, runtime, set())}
    assert got == {x.vm_id: want for x, _, _, want in cases if want is not None}


def test_adoption_ends_vms_lost_while_the_agent_was_away() -> None:
    multi = assignment("multi")
    single = assignment("single", mode=VmMode.single)
    stopping = assignment("stopping", mode=VmMode.single)
    records = {
        "multi": record(multi, LocalState.running),
        "single": record(single, LocalState.booting),
        "stopping": record(stopping, LocalState.stopping, stop_at=1.0),
    }
    runtime = dict.fromkeys(records, Runtime.gone)
    actions = adoption(records, runtime, set())
    assert [(x.vm_id, x.do, x.state, x.cause, x.detail) for x in actions] == [
        ("multi", Do.finish, LocalState.ended, EndCause.crashed, LOST_WHILE_AWAY),
        ("single", Do.finish, LocalState.stopped, EndCause.crashed, LOST_WHILE_AWAY),
        ("stopping", Do.finish, LocalState.stopped, EndCause.crashed, LOST_WHILE_AWAY),
    ]


def test_adoption_leaves_ended_records_and_unobserved_ones_alone() -> None:
    a = assignment
    records = {
        "stopped": record(a("stopped", mode=VmMode.single), LocalState.stopped),
        "ended": record(a("ended"), LocalState.ended),
        "failed": record(a("failed"), LocalState.failed),
        "deleted": record(a("deleted"), LocalState.deleted),
        "unseen": record(a("unseen"), LocalState.running),  # no runtime: left to the rounds
    }
    assert adoption(records, {}, set()) == []


def test_a_save_request_of_a_stopped_vm_saves_its_disk_once() -> None:
    a = assignment(mode=VmMode.single, desired=DesiredState.stopped).model_copy(
        update={"save_as": "mine", "save_id": "save-1"}
    )
    stopped = record(a, LocalState.stopped)
    assert dos(plan({a.vm_id: a}, {a.vm_id: stopped}, {}, frozenset(), 0, {a.vm_id})) == [
        (Do.save, "vm-1")
    ]
    # Not without the disk, and not again once this request was carried out (whatever came of it).
    assert plan({a.vm_id: a}, {a.vm_id: stopped}, {}, frozenset(), 0, frozenset()) == []
    stopped.saved_id = "save-1"
    assert plan({a.vm_id: a}, {a.vm_id: stopped}, {}, frozenset(), 0, {a.vm_id}) == []
    # A new request under the same name is a new request.
    again = a.model_copy(update={"save_id": "save-2"})
    assert dos(plan({a.vm_id: again}, {a.vm_id: stopped}, {}, frozenset(), 0, {a.vm_id})) == [
        (Do.save, "vm-1")
    ]
