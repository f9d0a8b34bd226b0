"""Core-hours per group per bucket from literal VM spans (the pure function)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gridvm.common.errors import InvalidInput
from gridvm.schemas.usage import Bucket
from gridvm.services.usage_history import VmSpan, usage_history

NOW = datetime(2026, 3, 10, 15, 30, tzinfo=UTC)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


def test_day_buckets_end_today_and_split_a_vm_across_midnight() -> None:
    spans = [VmSpan("physics", 4, at(8, 22), at(9, 2))]  # 2 h on the 8th, 2 h on the 9th
    history = usage_history(spans, 7, NOW)
    assert history.bucket is Bucket.day
    assert history.starts[0] == at(4, 0) and history.starts[-1] == at(10, 0)
    assert len(history.starts) == 7
    (physics,) = history.series
    assert physics.group == "physics"
    assert physics.core_hours == [0, 0, 0, 0, 8.0, 8.0, 0]


def test_a_running_vm_counts_until_now() -> None:
    history = usage_history([VmSpan("bio", 2, at(10, 12), None)], 7, NOW)
    assert history.series[0].core_hours[-1] == pytest.approx(7.0)  # 3.5 h x 2 cores


def test_short_ranges_have_hour_buckets() -> None:
    history = usage_history([VmSpan("bio", 1, at(10, 13, 30), at(10, 14, 15))], 1, NOW)
    assert history.bucket is Bucket.hour
    assert len(history.starts) == 24 and history.starts[-1] == at(10, 15)
    values = dict(zip(history.starts, history.series[0].core_hours, strict=True))
    assert values[at(10, 13)] == pytest.approx(0.5)
    assert values[at(10, 14)] == pytest.approx(0.25)
    assert sum(history.series[0].core_hours) == pytest.approx(0.75)


def test_use_before_the_range_is_cut_off_and_groups_sorted_by_total() -> None:
    spans = [
        VmSpan("chem", 1, at(1, 0), at(5, 0)),  # only the 4th (24 h) is in range
        VmSpan("physics", 8, at(9, 0), at(9, 12)),  # 96 core-hours
        VmSpan("chem", 2, at(2, 0), at(2, 5)),  # before the range: nothing
        VmSpan("old", 4, at(1, 0), at(2, 0)),  # no series at all
    ]
    history = usage_history(spans, 7, NOW)
    assert [s.group for s in history.series] == ["physics", "chem"]
    assert history.series[0].total == pytest.approx(96)
    assert history.series[1].core_hours[0] == pytest.approx(24)
    assert history.series[1].total == pytest.approx(24)


def test_several_vms_of_one_group_add_up() -> None:
    spans = [VmSpan("physics", 1, NOW - timedelta(hours=1), NOW) for _ in range(3)]
    history = usage_history(spans, 2, NOW)
    assert sum(history.series[0].core_hours) == pytest.approx(3)


@pytest.mark.parametrize("days", [0, -1, 367])
def test_a_range_out_of_bounds_is_refused_clearly(days: int) -> None:
    with pytest.raises(InvalidInput, match="days must be between 1 and 366"):
        usage_history([], days, NOW)
