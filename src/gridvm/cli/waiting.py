"""Following VMs to their end with a progress bar, then saying how they ended."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import typer

from gridvm.cli import output
from gridvm.cli.progress import vm_bar
from gridvm.cli.state import wants_json
from gridvm.cli.vm_views import counts_text, vm_table
from gridvm.client import DEFAULT_UNTIL, Client, wait_for_vms
from gridvm.schemas.vms import DeploymentOut, VmOut, VmState

# A run "went well" when every VM ended in one of these states.
GOOD_ENDS = frozenset({VmState.done, VmState.stopped})


# The options of every command that waits for VMs.
Timeout = Annotated[str | None, typer.Option("--timeout", help="give up after this long, e.g. 2h")]
Poll = Annotated[float, typer.Option("--poll", help="seconds between checks", hidden=True)]


def wait_with_bar(
    gv: Client,
    vms: Sequence[str | VmOut],
    timeout_s: int | None,
    poll: float,
    deployment: str | None,
) -> list[VmOut]:
    """Wait until every VM has ended, with a bar of counts per state; Ctrl-C stops waiting."""
    try:
        with vm_bar(len(vms), DEFAULT_UNTIL) as bar:
            return wait_for_vms(gv, vms, timeout=timeout_s, poll=poll, on_progress=bar)
    except KeyboardInterrupt:
        where = f"gridvm deployment show {deployment}" if deployment else "gridvm vm list"
        output.note(f"stopped waiting; the VMs go on (see them with: {where})")
        raise typer.Exit(130) from None


def print_outcome(
    ctx: typer.Context, vms: list[VmOut], *, deployment: DeploymentOut | None = None
) -> None:
    """The VMs as they ended; exit 1 unless every one ended done or stopped."""
    bad = [vm for vm in vms if vm.state not in GOOD_ENDS]
    if wants_json(ctx):
        output.print_json(deployment if deployment is not None else vms)
    else:
        vm_table(vms)
    if bad:
        output.note(
            f"error: {len(bad)} of {len(vms)} VMs did not end well: {counts_text(bad)}"
            " (see why with: gridvm vm show ID)"
        )
        raise typer.Exit(1)
    if not wants_json(ctx):
        output.note(f"all {len(vms)} VMs ended: {counts_text(vms)}")
