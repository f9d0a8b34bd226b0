from __future__ import annotations

import pytest

from gridvm.common.errors import InvalidInput
from gridvm.common.units import format_duration, format_size, parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("256M", 256 * 2**20),
        ("8G", 8 * 2**30),
        ("1.5GiB", 3 * 2**29),
        ("1024", 1024),
        ("2 k", 2048),
    ],
)
def test_parse_size(text: str, expected: int) -> None:
    assert parse_size(text) == expected


def test_parse_size_default_unit() -> None:
    assert parse_size("512", default_unit="M") == 512 * 2**20


@pytest.mark.parametrize("text", ["", "lots", "12X", "-5M"])
def test_parse_size_refuses_nonsense_with_a_hint(text: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_size(text)
    assert info.value.hint


@pytest.mark.parametrize(
    ("text", "expected"), [("90", 90), ("10m", 600), ("1h30m", 5400), ("2d", 172800)]
)
def test_parse_duration(text: str, expected: int) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "10 minutes", "m10", "1h 30m", "5y"])
def test_parse_duration_refuses_nonsense(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_duration(text)


def test_formatting() -> None:
    assert format_size(1536) == "1.5 KiB"
    assert format_size(512) == "512 B"
    assert format_duration(3725) == "1h2m5s"
    assert format_duration(59) == "59s"


def test_whole_sizes_drop_the_decimal() -> None:
    assert format_size(2**30) == "1 GiB"
    assert format_size(5 * 2**40) == "5 TiB"
