"""Decide what to do on this host: the server's wishes against what is really there.

A pure function over literal data, so every rule is tested without QEMU.
"""

from __future__ import annotations

from collections.abc import Mapping
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


class Do(StrEnum):
    start = "start"  # new disk from the image
    restart = "restart"  # boot the kept single-mode disk again
    pause = "pause"
    resume = "resume"
    powerdown = "powerdown"  # ACPI power button
    kill = "kill"  # forced off after the grace period
    finish = "finish"  # QEMU ended: tidy up, keep or drop the disk by mode
    delete = "delete"  # terminate: kill, delete the disk, report deleted
    forget = "forget"  # not assigned here any more: remove everything
    note = "note"  # nothing to run: just record an outcome to report


@dataclass(frozen=True)
class Action:
    do: Do
    vm_id: str
    assignment: Assignment | None = None
    cause: EndCause | None = None
    state: LocalState | None = None


_LIVE = {
    LocalState.booting,
    LocalState.running,
    LocalState.suspended,
    LocalState.stopping,
}


def plan(
    assignments: Mapping[str, Assignment],
    records: Mapping[str, VmRecord],
    runtime: Mapping[str, Runtime],
    busy: frozenset[str],
    now: float,
) -> list[Action]:
    """Actions that move this host towards ``assignments``.

    ``runtime`` holds what QEMU says of every VM whose record is live; ``busy``
    names VMs with an action still under way, which are left alone this round.
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
            actions.extend(_fresh(vm_id, wanted, record))
        elif wanted.attempt == record.attempt:
            actions.extend(_known(vm_id, wanted, record, runtime.get(vm_id, Runtime.gone), now))
    return actions


def _fresh(vm_id: str, wanted: Assignment, old: VmRecord | None) -> list[Action]:
    actions = [Action(Do.forget, vm_id)] if old is not None else []
    if wanted.desired in (DesiredState.running, DesiredState.suspended):
        actions.append(Action(Do.start, vm_id, wanted))
    elif wanted.desired == DesiredState.deleted:
        actions.append(Action(Do.note, vm_id, wanted, state=LocalState.deleted))
    else:
        actions.append(
            Action(Do.note, vm_id, wanted, cause=EndCause.stopped, state=LocalState.ended)
        )
    return actions


def _known(
    vm_id: str, wanted: Assignment, record: VmRecord, runtime: Runtime, now: float
) -> list[Action]:
    desired = wanted.desired
    state = record.state
    if desired == DesiredState.deleted:
        if state == LocalState.deleted:
            return []
        return [Action(Do.delete, vm_id, wanted)]
    if state in _LIVE:
        return _live(vm_id, wanted, record, runtime, now)
    if state == LocalState.stopped and desired in (DesiredState.running, DesiredState.suspended):
        return [Action(Do.restart, vm_id, wanted)]
    return []


def _live(
    vm_id: str, wanted: Assignment, record: VmRecord, runtime: Runtime, now: float
) -> list[Action]:
    desired = wanted.desired
    if runtime == Runtime.shutdown:
        cause = EndCause.stopped if record.stop_requested_at is not None else EndCause.poweroff
        return [Action(Do.finish, vm_id, wanted, cause=cause)]
    if runtime == Runtime.gone:
        return [Action(Do.finish, vm_id, wanted, cause=EndCause.crashed)]
    if desired == DesiredState.stopped:
        if record.stop_requested_at is None:
            return [Action(Do.powerdown, vm_id, wanted)]
        if now - record.stop_requested_at >= wanted.stop_grace_s:
            return [Action(Do.kill, vm_id, wanted, cause=EndCause.killed)]
        return []
    if desired == DesiredState.suspended and runtime == Runtime.running:
        return [Action(Do.pause, vm_id, wanted)]
    if desired == DesiredState.running and runtime == Runtime.paused:
        return [Action(Do.resume, vm_id, wanted)]
    return []


def keeps_disk(mode: VmMode, cause: EndCause) -> bool:
    """A single-mode VM keeps its disk whatever ended it; a multi-mode VM never does."""
    return mode == VmMode.single and cause != EndCause.start_failed
