from __future__ import annotations

import logging

import pytest

from gridvm.common.errors import InvalidInput
from gridvm.common.logs import RedactingFilter, redact
from gridvm.common.names import new_id, validate_name


@pytest.mark.parametrize("name", ["tiny", "my-image_2.1", "A1"])
def test_good_names_pass(name: str) -> None:
    assert validate_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "a/b", "..", "a..b", ".hidden", "-x", "x" * 64, "sp ace", "ü"]
)
def test_bad_names_are_refused_with_a_hint(name: str) -> None:
    with pytest.raises(InvalidInput) as info:
        validate_name(name, what="image name")
    assert "image name" in info.value.message
    assert info.value.hint


def test_ids_are_distinct_and_safe() -> None:
    ids = {new_id("vm") for _ in range(1000)}
    assert len(ids) == 1000
    assert all(validate_name(i) for i in ids)


def test_tokens_and_passwords_never_reach_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("gridvm.test")
    logger.addFilter(RedactingFilter())
    with caplog.at_level(logging.INFO):
        logger.info("auth with %s", "gvm_SuperSecretTokenValue123")
        logger.info("db at postgresql://gridvm:hunter2@db:5432/gridvm")
        logger.info("header Authorization: Bearer abc.def")
    text = caplog.text
    assert "SuperSecret" not in text and "hunter2" not in text and "abc.def" not in text
    assert redact("gvm_abcdefghijk") == "gvm_***"
