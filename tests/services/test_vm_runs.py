"""services.vm_runs: opening and closing a VM's runs is safe to repeat (on a real SQLite DB)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from gridvm.services.vm_runs import close_run, open_run, run_count, runs_of
from gridvm.store.db import Database
from gridvm.store.models import Deployment, Group, User, Vm, VmRun

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'gridvm.db'}")
    database.migrate()
    with database.session() as s:
        s.add(Group(id="g1", name="physics"))
        s.add(User(id="u1", name="alice", role="user", primary_group_id="g1"))
        s.add(Deployment(id="d1", name="job", owner_id="u1", count=1))
        s.add(
            Vm(
                id="vm1",
                name="job",
                owner_id="u1",
                group_id="g1",
                deployment_id="d1",
                index=0,
                image_name="base",
                vcpus=4,
                memory_mb=2048,
                mode="single",
                walltime_s=3600,
                state="running",
                desired="running",
            )
        )
    yield database
    database.dispose()


def test_opening_twice_keeps_one_run_and_closing_twice_keeps_the_first_end(db: Database) -> None:
    with db.session() as s:
        vm = s.get_one(Vm, "vm1")
        first = open_run(s, vm, T0)
        assert open_run(s, vm, T0 + timedelta(minutes=5)) is first
        close_run(s, vm, T0 + timedelta(hours=1), "stopped")
        assert close_run(s, vm, T0 + timedelta(hours=2), "done") is None
    with db.session() as s:
        (run,) = s.scalars(select(VmRun)).all()
        assert (run.group_id, run.owner_id, run.vcpus, run.memory_mb) == ("g1", "u1", 4, 2048)
        assert (run.started_at, run.ended_at, run.end_state) == (
            T0,
            T0 + timedelta(hours=1),
            "stopped",
        )


def test_closing_with_no_run_is_harmless_and_each_start_numbers_a_new_run(db: Database) -> None:
    with db.session() as s:
        vm = s.get_one(Vm, "vm1")
        assert close_run(s, vm, T0, "failed") is None
        assert run_count(s, "vm1") == 0
        open_run(s, vm, T0)
        close_run(s, vm, T0 + timedelta(minutes=30), "stopped")
        open_run(s, vm, T0 + timedelta(hours=1))
    with db.session() as s:
        listed = runs_of(s, "vm1")
    assert [(r.number, r.duration_s, r.end_state) for r in listed[:1]] == [(1, 1800, "stopped")]
    assert (listed[1].number, listed[1].ended_at, listed[1].end_state) == (2, None, None)
    # A run going on lasts until now.
    assert listed[1].duration_s >= 23 * 3600


def test_a_clock_step_back_never_makes_a_negative_run(db: Database) -> None:
    with db.session() as s:
        vm = s.get_one(Vm, "vm1")
        open_run(s, vm, T0)
        run = close_run(s, vm, T0 - timedelta(seconds=5), "done")
        assert run is not None and run.ended_at == T0
