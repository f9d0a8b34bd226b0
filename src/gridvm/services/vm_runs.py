"""A VM's runs: each time it runs, from its first report of running to when it stops or ends.

A VM's own started_at .. ended_at keep only its latest run (a start after a stop, or a
redeploy, resets them); the runs keep them all, for usage history and accounting. Every
place that starts or ends a VM calls ``open_run`` / ``close_run`` here, in the same
transaction as the state change. Both are idempotent: opening a VM that has an open run
keeps that run, and closing a VM with no open run does nothing. Suspended time is part of
the run (the VM holds its cores).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gridvm.schemas.vms import VmRunOut
from gridvm.store.models import Vm, VmRun, utcnow

# end_state of a run that a redeploy discarded while the VM ran (not a VM state).
REDEPLOYED = "redeployed"


def open_run_of(s: Session, vm_id: str) -> VmRun | None:
    """The VM's run that has not ended, if any."""
    return s.scalars(
        select(VmRun)
        .where(VmRun.vm_id == vm_id, VmRun.ended_at.is_(None))
        .order_by(VmRun.id.desc())
        .limit(1)
    ).first()


def open_run(s: Session, vm: Vm, now: datetime) -> VmRun:
    """Record that ``vm`` began running at ``now`` (on its host, with its cores and memory)."""
    run = open_run_of(s, vm.id)
    if run is not None:
        return run
    run = VmRun(
        vm_id=vm.id,
        owner_id=vm.owner_id,
        group_id=vm.group_id,
        host_id=vm.host_id,
        vcpus=vm.vcpus,
        memory_mb=vm.memory_mb,
        started_at=now,
    )
    s.add(run)
    return run


def close_run(s: Session, vm: Vm, now: datetime, state: str) -> VmRun | None:
    """Record that ``vm``'s run ended at ``now`` in ``state``; None if no run was open."""
    run = open_run_of(s, vm.id)
    if run is None:
        return None
    run.ended_at = max(now, run.started_at)
    run.end_state = state
    return run


def run_count(s: Session, vm_id: str) -> int:
    return int(s.scalar(select(func.count()).where(VmRun.vm_id == vm_id)) or 0)


def run_out(run: VmRun, number: int, now: datetime) -> VmRunOut:
    end = run.ended_at or now
    return VmRunOut(
        number=number,
        host=run.host.name if run.host else None,
        vcpus=run.vcpus,
        memory_mb=run.memory_mb,
        started_at=run.started_at,
        ended_at=run.ended_at,
        duration_s=max(0, int((end - run.started_at).total_seconds())),
        end_state=run.end_state,
    )


def runs_of(s: Session, vm_id: str) -> list[VmRunOut]:
    """The VM's runs, oldest first, numbered from 1."""
    rows = s.scalars(
        select(VmRun).where(VmRun.vm_id == vm_id).order_by(VmRun.started_at, VmRun.id)
    ).all()
    now = utcnow()
    return [run_out(run, i, now) for i, run in enumerate(rows, start=1)]
