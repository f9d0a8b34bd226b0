"""``gridvm deployment ...``: the groups of VMs that one ``vm run`` made."""

from __future__ import annotations

from typing import Annotated

import typer

from gridvm.cli import output
from gridvm.cli.state import client, wants_json
from gridvm.cli.vm_views import vm_table
from gridvm.schemas.vms import DeploymentOut, VmState

app = typer.Typer(help="Deployments: the VMs of one request.", no_args_is_help=True)


def _counts(deployment: DeploymentOut) -> str:
    order = {state.value: i for i, state in enumerate(VmState)}
    states = sorted(deployment.states.items(), key=lambda kv: order.get(kv[0], len(order)))
    return ", ".join(f"{n} {state}" for state, n in states) or "-"


@app.command("list")
def list_deployments(
    ctx: typer.Context,
    all_users: Annotated[bool, typer.Option("--all", "-a", help="everyone's (admins)")] = False,
) -> None:
    """Your deployments with how many of their VMs are in each state."""
    deployments = client(ctx).deployments.list(all=all_users)
    if wants_json(ctx):
        output.print_json(deployments)
        return
    if not deployments:
        output.note("no deployments (start VMs with: gridvm vm run IMAGE)")
        return
    rows = [
        (d.id, d.name, d.owner, str(d.count), _counts(d), output.relative(d.created_at))
        for d in deployments
    ]
    output.show(output.table(("ID", "NAME", "OWNER", "VMS", "STATES", "CREATED"), rows))


@app.command("show")
def show_deployment(
    ctx: typer.Context,
    deployment_id: Annotated[str, typer.Argument(metavar="ID", help="deployment id")],
) -> None:
    """A deployment and its VMs."""
    d = client(ctx).deployments.get(deployment_id)
    if wants_json(ctx):
        output.print_json(d)
        return
    output.show(
        output.fields(
            [
                ("id", d.id),
                ("name", d.name),
                ("owner", d.owner),
                ("created", output.timestamp(d.created_at)),
                ("VMs", str(d.count)),
                ("states", _counts(d)),
            ]
        )
    )
    if d.vms:
        output.info("")
        vm_table(d.vms)
