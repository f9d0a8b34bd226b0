"""Decide what to do on this host: the server's wishes against what is really there.

Pure functions over literal data, so every rule is tested without QEMU:
:func:`plan` each round, :func:`adoption` once when the agent starts.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass
from enum import StrEnum

from gridvm.agent.records import VmRecord
from gridvm.schemas.agent import Assignment, DesiredState, EndCause, LocalState
from gridvm.schemas.vms import VmMode


class Runtime(StrEnum):
    """What the hypervisor says of a VM's QEMU process."""

    running = "running"
    paused = "paused"
    shutdown = "shutdown"  # the guest powered off; QEMU waits (-no-shutdown)
    gone = "gone"  # no QEMU process
    hung = "hung"  # QEMU is there but its monitor does not answer


class Do(StrEnum):
    start = "start"  # new disk from the image
    restart = "restart"  # boot the kept single-mode disk again
    pause = "pause"
    resume = "resume"
    powerdown = "powerdown"  # ACPI power button
    kill = "kill"  # forced off after the grace period, ends in ``state``
    finish = "finish"  # QEMU ended (or must): kill it, end in ``state``
    delete = "delete"  # terminate: kill, delete the disk, report deleted
    forget = "forget"  # not assigned here any more: remove everything
    note = "note"  # nothing to run: just record ``state`` (cause, detail) to report
    save = "save"  # upload the stopped VM's disk, flattened, as the image ``save_as``


@dataclass(frozen=True)
class Action:
    """One step for :class:`~gridvm.agent.machines.Machines`.

    For ``kill`` and ``finish``, ``state`` says how the VM ends: ``stopped``
    keeps its disk, anything else drops it.
    """

    do: Do
    vm_id: str
    assignment: Assignment | None = None
    cause: EndCause | None = None
    state: LocalState | None = None
    detail: str | None = None


LIVE = frozenset(
    {LocalState.booting, LocalState.running, LocalState.suspended, LocalState.stopping}
)
INTERRUPTED_START = "the start was interrupted"
RESTARTED_WHILE_STARTING = "the agent restarted while the VM was starting"
LOST_WHILE_AWAY = "QEMU was not running when the agent restarted"


def plan(
    assignments: Mapping[str, Assignment],
    records: Mapping[str, VmRecord],
    runtime: Mapping[str, Runtime],
    busy: Set[str],
    now: float,
    disks: Set[str] = frozenset(),
) -> list[Action]:
    """Actions that move this host towards ``assignments``.

    ``runtime`` holds what QEMU says of every VM whose record is live; ``busy``
    names VMs with an action still under way, which are left alone this round;
    ``disks`` names the VMs in ``staging`` or ``stopped`` whose disk exists.
    """
    actions: list[Action] = []
    for vm_id in records:
        if vm_id not in assignments and vm_id not in busy:
            actions.append(Action(Do.forget, vm_id))
    for vm_id, wanted in assignments.items():
        if vm_id in busy:
            continue
        record = records.get(vm_id)
        if record is None or wanted.attempt > record.attempt:
            actions.extend(_fresh(wanted, record))
        elif wanted.attempt == record.attempt:
            seen = runtime.get(vm_id, Runtime.gone)
            actions.extend(_known(wanted, record, seen, vm_id in disks, now))
    return actions


def adoption(
    records: Mapping[str, VmRecord], runtime: Mapping[str, Runtime], disks: Set[str]
) -> list[Action]:
    """On agent start: square each record with what is left of its VM on the host.

    ``runtime`` holds what QEMU says of the live records (a VM missing from it is
    left to the rounds); ``disks`` names the VMs in ``staging`` whose disk exists.
    Only facts are acted on here: the server's wishes come with the first round.
    """
    actions: list[Action] = []
    for vm_id, record in records.items():
        a = record.assignment
        if record.state == LocalState.staging:
            actions.append(_interrupted(a, vm_id in disks, RESTARTED_WHILE_STARTING))
        elif record.state in LIVE and vm_id in runtime:
            seen = runtime[vm_id]
            if seen == Runtime.gone:
                actions.append(_end(Do.finish, a, EndCause.crashed, LOST_WHILE_AWAY))
            elif seen == Runtime.shutdown:
                actions.append(_powered_off(a, record))
            elif _seen_state(record.state, seen) != record.state:
                actions.append(_note(a, record, _seen_state(record.state, seen)))
    return actions


def _fresh(wanted: Assignment, old: VmRecord | None) -> list[Action]:
    vm_id = wanted.vm_id
    actions = [Action(Do.forget, vm_id)] if old is not None else []
    if wanted.desired in (DesiredState.running, DesiredState.suspended):
        actions.append(Action(Do.start, vm_id, wanted))
    elif wanted.desired == DesiredState.deleted:
        actions.append(Action(Do.note, vm_id, wanted, state=LocalState.deleted))
    else:
        # Stopped before it ever ran: a single-mode VM may still be started later
        # (its disk is made at that first boot).
        state = LocalState.stopped if wanted.mode == VmMode.single else LocalState.ended
        actions.append(Action(Do.note, vm_id, wanted, cause=EndCause.stopped, state=state))
    return actions


def _known(
    wanted: Assignment, record: VmRecord, runtime: Runtime, has_disk: bool, now: float
) -> list[Action]:
    desired = wanted.desired
    state = record.state
    if desired == DesiredState.deleted:
        if state == LocalState.deleted:
            return []
        return [Action(Do.delete, wanted.vm_id, wanted)]
    if state == LocalState.staging:  # not busy: its start died half-way
        return [_interrupted(wanted, has_disk, INTERRUPTED_START)]
    if state in LIVE:
        return _live(wanted, record, runtime, now)
    if state == LocalState.stopped and desired in (DesiredState.running, DesiredState.suspended):
        return [Action(Do.restart, wanted.vm_id, wanted)]
    if (
        state == LocalState.stopped
        and wanted.save_id is not None
        and wanted.save_id != record.saved_id
        and has_disk
    ):
        return [Action(Do.save, wanted.vm_id, wanted)]
    # A stopped record keeps its boot number while a start of its disk is pending (a newer
    # boot number): "stopped" is what the last boot did, not what the pending one did.
    return []


def _live(wanted: Assignment, record: VmRecord, runtime: Runtime, now: float) -> list[Action]:
    vm_id = wanted.vm_id
    desired = wanted.desired
    if runtime == Runtime.shutdown:
        return [_powered_off(wanted, record)]
    if runtime == Runtime.gone:
        return [_end(Do.finish, wanted, EndCause.crashed)]
    if desired == DesiredState.stopped:
        # Also for a hung QEMU: the request is recorded even if the monitor does not
        # take it, and the kill after the grace period needs no monitor.
        if record.stop_requested_at is None:
            return [Action(Do.powerdown, vm_id, wanted)]
        if now - record.stop_requested_at >= wanted.stop_grace_s:
            return [_end(Do.kill, wanted, EndCause.killed)]
        return []
    if runtime == Runtime.hung:
        return []
    if desired == DesiredState.suspended and runtime == Runtime.running:
        return [Action(Do.pause, vm_id, wanted)]
    if desired == DesiredState.running and runtime == Runtime.paused:
        return [Action(Do.resume, vm_id, wanted)]
    seen = _seen_state(record.state, runtime)
    return [_note(wanted, record, seen)] if seen != record.state else []


def _seen_state(state: LocalState, runtime: Runtime) -> LocalState:
    """What a live record should say of a QEMU that runs, is paused or hangs."""
    if state == LocalState.stopping or runtime == Runtime.hung:
        return state  # a stop under way stays one; a hung QEMU tells nothing
    return LocalState.running if runtime == Runtime.running else LocalState.suspended


def _powered_off(a: Assignment, record: VmRecord) -> Action:
    cause = EndCause.stopped if record.stop_requested_at is not None else EndCause.poweroff
    return _end(Do.finish, a, cause)


def _end(do: Do, a: Assignment, cause: EndCause, detail: str | None = None) -> Action:
    """QEMU is ended: a single-mode VM keeps its disk whatever ended it, multi-mode never."""
    state = LocalState.stopped if a.mode == VmMode.single else LocalState.ended
    return Action(do, a.vm_id, a, cause=cause, state=state, detail=detail)


def _interrupted(a: Assignment, has_disk: bool, detail: str) -> Action:
    """A start that died half-way: kill what it left; a single-mode disk is never lost here."""
    state = LocalState.stopped if a.mode == VmMode.single and has_disk else LocalState.failed
    return Action(Do.finish, a.vm_id, a, cause=EndCause.start_failed, state=state, detail=detail)


def _note(a: Assignment, record: VmRecord, state: LocalState) -> Action:
    return Action(Do.note, a.vm_id, a, cause=record.cause, state=state, detail=record.detail)
