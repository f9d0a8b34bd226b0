"""Turning the errors a user can cause into one line on stderr and exit code 1.

The root command group catches them around every command: the SDK's errors
(server answers, unreachable server, missing configuration), bad input and
local file problems. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TypeVar

import typer
from typer.core import TyperGroup

from gridvm.common.errors import GridvmError

EXIT_FAILURE = 1

T = TypeVar("T")
R = TypeVar("R")


def describe_os_error(exc: OSError) -> str:
    """``disk.qcow2: No such file or directory``."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    if exc.filename is not None:
        return f"{exc.filename}: {reason}"
    return reason


def fail(message: str, hint: str | None = None) -> NoReturn:
    """Print ``error: message (hint)`` on stderr and exit 1."""
    raise GridvmError(message, hint)


def report(exc: BaseException) -> None:
    if isinstance(exc, GridvmError):
        typer.echo(f"error: {exc}", err=True)
    elif isinstance(exc, OSError):
        typer.echo(f"error: {describe_os_error(exc)}", err=True)
    else:
        raise exc


class GridvmGroup(TyperGroup):
    """The root group: user-caused errors end the command with one clear line."""

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            raise  # the reader went away (``| head``): Typer exits quietly
        except (GridvmError, OSError) as exc:
            report(exc)
            raise typer.Exit(EXIT_FAILURE) from None


def for_each(items: Sequence[T], action: Callable[[T], R]) -> tuple[list[R], int]:
    """``action`` on every item, reporting each failure: (results, number that failed).

    The caller prints the results, then exits 1 if any failed (``exit_if``).
    """
    results: list[R] = []
    failed = 0
    for item in items:
        try:
            results.append(action(item))
        except GridvmError as exc:
            report(exc)
            failed += 1
    return results, failed


def exit_if(failed: int) -> None:
    if failed:
        raise typer.Exit(EXIT_FAILURE)
