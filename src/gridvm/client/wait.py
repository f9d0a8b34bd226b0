"""Waiting for VMs to reach a state (the end of their run, by default)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable

from gridvm.client.client import Client
from gridvm.client.errors import WaitTimeout
from gridvm.common.units import format_duration
from gridvm.schemas.vms import FINAL_STATES, VmOut, VmState

DEFAULT_UNTIL: frozenset[VmState] = FINAL_STATES | {VmState.stopped}
"""Where a VM's run ends: done, failed, cancelled, expired, or stopped (single mode)."""


def wait_for_vms(
    client: Client,
    vms: Iterable[str | VmOut],
    until: Collection[VmState | str] | None = None,
    timeout: float | None = None,
    poll: float = 2.0,
    on_progress: Callable[[list[VmOut]], None] | None = None,
) -> list[VmOut]:
    """Poll until every VM is in one of ``until``; return them as last seen, in order.

    ``vms`` are VM ids or ``VmOut`` objects (such as ``deployment.vms``). VMs are
    read a deployment at a time, so waiting for a thousand VMs costs one request
    per deployment per poll. ``on_progress`` gets the VMs after every poll.
    Raises ``WaitTimeout`` (a ``TimeoutError``) after ``timeout`` seconds.
    """
    targets = frozenset(VmState(s) for s in until) if until else DEFAULT_UNTIL
    seen: dict[str, VmOut | None] = {}
    for item in vms:
        if isinstance(item, VmOut):
            seen[item.id] = item
        else:
            seen.setdefault(item, None)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        _refresh(client, seen, targets)
        current = [vm for vm in seen.values() if vm is not None]
        if on_progress is not None:
            on_progress(current)
        if all(vm.state in targets for vm in current):
            return current
        now = time.monotonic()
        if deadline is not None and now >= deadline:
            raise _timeout(current, targets, timeout or 0.0)
        time.sleep(poll if deadline is None else max(0.0, min(poll, deadline - now)))


def _refresh(client: Client, seen: dict[str, VmOut | None], targets: frozenset[VmState]) -> None:
    """Read again every VM not yet in ``targets``: known ones through their deployment."""
    deployments: set[str] = set()
    for vm_id, vm in seen.items():
        if vm is None:
            seen[vm_id] = client.vms.get(vm_id)
        elif vm.state not in targets:
            deployments.add(vm.deployment)
    for deployment_id in sorted(deployments):
        for vm in client.deployments.get(deployment_id).vms:
            if vm.id in seen:
                seen[vm.id] = vm


def state_counts(vms: Iterable[VmOut]) -> dict[VmState, int]:
    """How many VMs are in each state, in the order of the VM life cycle."""
    counts = Counter(vm.state for vm in vms)
    return {state: counts[state] for state in VmState if counts[state]}


def _timeout(vms: list[VmOut], targets: frozenset[VmState], timeout: float) -> WaitTimeout:
    waiting = [vm for vm in vms if vm.state not in targets]
    counts = ", ".join(f"{n} {state.value}" for state, n in state_counts(waiting).items())
    if targets == DEFAULT_UNTIL:
        goal = "end"
    else:
        goal = "reach " + " or ".join(s.value for s in VmState if s in targets)
    message = (
        f"{len(waiting)} of {len(vms)} VMs did not {goal} within"
        f" {format_duration(timeout)}: {counts}"
    )
    pending = next((vm for vm in waiting if vm.pending_reason), None)
    if pending is not None:
        message += f"; {pending.id} is pending because: {pending.pending_reason}"
    return WaitTimeout(message, hint="wait longer, or see the VMs with: gridvm vm list", vms=vms)
