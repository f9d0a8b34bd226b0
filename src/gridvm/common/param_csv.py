"""The CSV file of a parameter scan: a header row naming the columns, then one row per VM.

The job sees each row's columns as environment variables named by the header,
so a header name must be a shell variable name, and not one gridvm sets
itself (``GRIDVM_*``). Everything is checked here, before any request, so a
bad file starts nothing. The CLI (``--param-file``) and the web portal (a file
upload) both read scans through this module.
"""

from __future__ import annotations

import csv
import io
import re

from gridvm.common.errors import InvalidInput

SHELL_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
RESERVED_PREFIX = "GRIDVM_"
FORMAT_HINT = "the first line names the columns (e.g. alpha,seed), each further line is one VM"


def parse_param_csv(data: bytes, source: str) -> list[dict[str, str]]:
    """The rows of the CSV ``data`` as ``{column: value}``, one per VM.

    ``source`` names the file in messages (its path, or an uploaded file's name).
    Blank lines are skipped. Raises ``InvalidInput`` with the file (and line) at fault.
    """
    text = _decode(source, data)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: list[str] | None = None
    rows: list[dict[str, str]] = []
    try:
        for fields in reader:
            if not fields:
                continue  # a blank line
            if header is None:
                header = _check_header(source, reader.line_num, fields)
                continue
            if len(fields) != len(header):
                raise InvalidInput(
                    f"{source} line {reader.line_num}: {_count(len(fields))} where the header"
                    f" has {_count(len(header))}",
                    hint="every row needs one value per column (quote values holding commas)",
                )
            rows.append(dict(zip(header, fields, strict=True)))
    except csv.Error as exc:
        raise InvalidInput(f"{source} line {reader.line_num}: {exc}", hint=FORMAT_HINT) from exc
    if not rows:
        what = "is empty" if header is None else "has a header but no rows"
        raise InvalidInput(f"{source} {what}: no rows, so no VMs to start", hint=FORMAT_HINT)
    return rows


def _decode(source: str, data: bytes) -> str:
    if b"\0" in data:  # valid UTF-8, but a binary file
        line = data[: data.index(b"\0")].count(b"\n") + 1
        raise InvalidInput(
            f"{source} is not a text file (a NUL byte on line {line})",
            hint="save the parameter file as CSV in UTF-8",
        )
    try:
        return data.decode("utf-8-sig")  # a byte-order mark (Excel's) is not part of a name
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InvalidInput(
            f"{source} is not UTF-8 text (byte {exc.start}, line {line})",
            hint="save the parameter file as CSV in UTF-8",
        ) from exc


def _check_header(source: str, line: int, names: list[str]) -> list[str]:
    seen: set[str] = set()
    for column, name in enumerate(names, start=1):
        where = f"{source} line {line}"
        if not name.strip():
            raise InvalidInput(
                f"{where}: column {column} of the header has no name", hint=FORMAT_HINT
            )
        if not SHELL_NAME_RE.fullmatch(name):
            raise InvalidInput(
                f"{where}: the column name {name!r} is not a shell variable name",
                hint="use letters, digits and '_', not starting with a digit: the job sees"
                " each column as an environment variable",
            )
        if name.startswith(RESERVED_PREFIX):
            raise InvalidInput(
                f"{where}: the column name {name!r} is reserved",
                hint=f"gridvm sets the {RESERVED_PREFIX}* variables itself: rename the column",
            )
        if name in seen:
            raise InvalidInput(
                f"{where}: the column name {name!r} appears twice in the header",
                hint="give every column its own name",
            )
        seen.add(name)
    return names


def _count(n: int) -> str:
    return f"{n} field" if n == 1 else f"{n} fields"
