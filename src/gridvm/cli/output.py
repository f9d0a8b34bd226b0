"""What the CLI prints: Rich tables for people, JSON for scripts, one-line messages.

Data goes to stdout; progress bars, warnings and errors go to stderr, so
``gridvm ... -o json | jq`` and ``gridvm token create > file`` stay clean.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import typer
from pydantic import BaseModel
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from gridvm.common.units import format_duration, format_size
from gridvm.schemas.vms import VmState

# Width of tables written to a pipe or a file, where no terminal says how wide to be.
PIPE_WIDTH = 200

STATE_STYLES: dict[str, str] = {
    VmState.pending: "yellow",
    VmState.scheduled: "cyan",
    VmState.staging: "cyan",
    VmState.booting: "cyan",
    VmState.running: "green",
    VmState.suspended: "magenta",
    VmState.stopping: "cyan",
    VmState.stopped: "blue",
    VmState.done: "bold green",
    VmState.failed: "bold red",
    VmState.cancelled: "dim",
    VmState.expired: "red",
    "enabled": "green",
    "disabled": "yellow",
    "online": "green",
    "offline": "red",
}


class OutputFormat(StrEnum):
    table = "table"
    json = "json"


def console(*, stderr: bool = False) -> Console:
    """A console on stdout (or stderr) that never interprets data as markup."""
    out = Console(stderr=stderr, highlight=False, markup=False, emoji=False)
    if not out.is_terminal and "COLUMNS" not in os.environ:
        out = Console(stderr=stderr, highlight=False, markup=False, emoji=False, width=PIPE_WIDTH)
    return out


# --- JSON ------------------------------------------------------------------------
def to_jsonable(data: Any) -> Any:
    if isinstance(data, BaseModel):
        return data.model_dump(mode="json")
    if isinstance(data, dict):
        return {str(k): to_jsonable(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [to_jsonable(item) for item in data]
    return data


def print_json(data: Any) -> None:
    typer.echo(json.dumps(to_jsonable(data), indent=2))


# --- messages ----------------------------------------------------------------------
def info(message: str) -> None:
    """A line for people on stdout (never used in JSON mode)."""
    typer.echo(message)


def warn(message: str) -> None:
    typer.echo(f"warning: {message}", err=True)


def note(message: str) -> None:
    """A remark on stderr that must not mix with data on stdout."""
    typer.echo(message, err=True)


# --- cells -------------------------------------------------------------------------
def cell(value: object) -> Text:
    """A table cell: plain text, ``-`` for nothing."""
    if value is None or value == "":
        return Text("-", style="dim")
    return Text(str(value))


def state_cell(state: str) -> Text:
    return Text(str(state), style=STATE_STYLES.get(str(state), ""))


def size_cell(num_bytes: int | None) -> Text:
    return cell(None if num_bytes is None else format_size(num_bytes))


def relative(when: datetime | None, now: datetime | None = None) -> str:
    """``5m ago`` / ``in 2h``: the largest unit only, for tables."""
    if when is None:
        return "-"
    now = now or datetime.now(UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = (now - when).total_seconds()
    future = seconds < 0
    seconds = abs(seconds)
    for unit, length in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= length:
            amount = f"{int(seconds // length)}{unit}"
            break
    else:
        amount = f"{int(seconds)}s"
    return f"in {amount}" if future else f"{amount} ago"


def timestamp(when: datetime | None) -> str:
    """``2024-05-01T10:00:00Z (5m ago)``: exact and relative, for ``show``."""
    if when is None:
        return "-"
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    iso = when.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    return f"{iso} ({relative(when)})"


def duration(seconds: int | None) -> str:
    return "-" if seconds is None else format_duration(seconds)


# --- tables --------------------------------------------------------------------------
def table(
    columns: Sequence[str], rows: Iterable[Sequence[Text | str]], title: str | None = None
) -> Table:
    out = Table(
        box=box.SIMPLE_HEAD, title=title, title_justify="left", pad_edge=False, show_edge=False
    )
    for name in columns:
        out.add_column(name, no_wrap=name in ("ID", "NAME"), overflow="fold")
    for row in rows:
        out.add_row(*(item if isinstance(item, Text) else cell(item) for item in row))
    return out


def fields(pairs: Iterable[tuple[str, Text | str]]) -> Table:
    """A two-column ``key  value`` listing for one object."""
    out = Table.grid(padding=(0, 2))
    out.add_column(style="bold", no_wrap=True)
    out.add_column(overflow="fold")
    for key, value in pairs:
        out.add_row(Text(key), value if isinstance(value, Text) else cell(value))
    return out


def show(renderable: Table) -> None:
    console().print(renderable)
