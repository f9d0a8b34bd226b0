from __future__ import annotations

import pytest

from gridvm.scheduler import Policy, priorities
from tests.scheduler.helpers import vm


def test_priority_adds_weighted_fairshare_age_and_size() -> None:
    policy = Policy(weight_fairshare=1000, weight_age=100, weight_size=10, max_age_s=1000)
    pending = [
        vm("young-big", cpus=4, group="a", submitted_at=1000),
        vm("old-small", cpus=1, group="b", submitted_at=500),
        vm("ancient", cpus=1, group="c", submitted_at=-5000),
    ]
    got = priorities(pending, {"a": 0.5, "b": 0.25}, policy, now=1000)
    assert got["young-big"] == pytest.approx(500 + 0 + 10)
    assert got["old-small"] == pytest.approx(250 + 50 + 2.5)
    assert got["ancient"] == pytest.approx(500 + 100 + 2.5)  # age capped; c unknown: 0.5
