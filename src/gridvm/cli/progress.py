"""Progress bars on stderr: bytes of a transfer, and VMs on their way to an end state."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager

from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from gridvm.cli.output import console
from gridvm.client import state_counts
from gridvm.schemas.vms import VmOut, VmState


@contextmanager
def transfer_bar(
    description: str, total: int | None, *, done_description: str | None = None
) -> Iterator[Callable[[int], None]]:
    """A bytes bar (size, speed, ETA); yields the callback that takes bytes done so far.

    ``done_description`` replaces the description once every byte is through
    (an upload then waits for the server to check the image). A ``total`` of
    ``None`` (not known in advance) shows bytes and speed without an end.
    """
    err = console(stderr=True)
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(binary_units=True),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=not err.is_terminal,
    )
    with progress:
        task = progress.add_task(description, total=total)

        def update(done: int) -> None:
            progress.update(task, completed=done)
            if done_description and total is not None and done >= total:
                progress.update(task, description=done_description)

        yield update


@contextmanager
def vm_bar(total: int, until: Collection[VmState]) -> Iterator[Callable[[list[VmOut]], None]]:
    """A bar of VMs that reached ``until``, described by how many are in each state."""
    err = console(stderr=True)
    progress = Progress(
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=err,
        disable=not err.is_terminal,
        transient=True,
    )
    with progress:
        task = progress.add_task("waiting", total=total)

        def update(vms: list[VmOut]) -> None:
            counts = state_counts(vms)
            finished = sum(n for state, n in counts.items() if state in until)
            text = "  ".join(f"{n} {state.value}" for state, n in counts.items())
            progress.update(task, completed=finished, description=text)

        yield update
