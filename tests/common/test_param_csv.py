"""The scan CSV parser shared by the CLI (--param-file) and the portal (an upload)."""

from __future__ import annotations

import pytest

from gridvm.common.errors import InvalidInput
from gridvm.common.param_csv import parse_param_csv


def test_rows_become_one_mapping_per_vm_named_by_the_header() -> None:
    data = b'\xef\xbb\xbfalpha,seed\r\n0.1,1\r\n\r\n"0,2",2\r\n'
    assert parse_param_csv(data, "scan.csv") == [
        {"alpha": "0.1", "seed": "1"},
        {"alpha": "0,2", "seed": "2"},
    ]


def test_messages_name_the_source_and_the_line() -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_param_csv(b"alpha,GRIDVM_X\n1,2\n", "upload.csv")
    assert refused.value.message == "upload.csv line 1: the column name 'GRIDVM_X' is reserved"
