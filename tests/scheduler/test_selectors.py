from __future__ import annotations

import pytest

from gridvm.common.errors import InvalidInput
from gridvm.scheduler.selectors import matches, parse_selector

LABELS = {"site": "a", "cpu_flags": "sse4,avx2 aes", "mem_gb": "64", "gpu": "yes"}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("", True),
        ("site in (a, b)", True),
        ("site in (b,c)", False),
        ("site notin (c)", True),
        ("zone notin (c)", True),  # a missing label is in no set
        ("cpu_flags contains avx2", True),
        ("cpu_flags contains avx512f", False),
        ("mem_gb >= 64", True),
        ("mem_gb > 64", False),
        ("mem_gb < 128, mem_gb <= 64", True),
        ("disk_gb >= 1", False),  # missing: a comparison fails
        ("gpu = yes", True),
        ("gpu != yes", False),
        ("gpu", True),
        ("!gpu", False),
        ("!fpga", True),
        ("site in (a), cpu_flags contains avx2, mem_gb >= 64", True),
        ("site in (a), mem_gb >= 65", False),
    ],
)
def test_selector_against_labels(selector: str, expected: bool) -> None:
    assert matches(selector, LABELS) is expected


@pytest.mark.parametrize(
    "selector",
    [
        "site in a",
        "mem_gb >= lots",
        "__import__('os').system('x')",
        "site in (a,,b)",
        "cpu_flags contains",
        "a = b = c",
    ],
)
def test_what_is_not_a_selector_is_refused_by_name(selector: str) -> None:
    with pytest.raises(InvalidInput, match=r"selector|compares numbers"):
        parse_selector(selector)
