"""The parameter file of ``gridvm vm run --param-file``: read here, parsed and checked by
:mod:`gridvm.common.param_csv` (the web portal's upload uses the same parser)."""

from __future__ import annotations

from pathlib import Path

from gridvm.common.param_csv import parse_param_csv


def read_param_file(path: Path) -> list[dict[str, str]]:
    """The rows of the CSV file at ``path`` as ``{column: value}``, one per VM.

    Raises ``InvalidInput`` with the file (and line) at fault; ``OSError`` if it
    cannot be read.
    """
    return parse_param_csv(path.read_bytes(), str(path))
