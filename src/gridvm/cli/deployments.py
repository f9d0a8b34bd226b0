"""``gridvm deployment ...``: the groups of VMs that one ``vm run`` made."""

from __future__ import annotations

from typing import Annotated

import typer

from gridvm.cli import output
from gridvm.cli.state import client, wants_json
from gridvm.cli.vm_views import counts_text, vm_table
from gridvm.cli.waiting import GOOD_ENDS, Poll, Timeout, wait_with_bar
from gridvm.common.units import parse_duration
from gridvm.schemas.vms import FINAL_STATES, DeploymentOut, VmState

app = typer.Typer(
    help="Deployments: the VMs of one request (list, show, wait, cancel).", no_args_is_help=True
)

DeploymentId = Annotated[
    str, typer.Argument(metavar="ID", help="deployment id (dep-...)", show_default=False)
]


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
def show_deployment(ctx: typer.Context, deployment_id: DeploymentId) -> None:
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
                ("max running", "no limit" if d.max_running is None else str(d.max_running)),
                ("states", _counts(d)),
                ("roles", output.cell(_roles(d))),
                ("placement", output.cell(_placement(d))),
            ]
        )
    )
    if d.vms:
        output.info("")
        vm_table(d.vms)


def _placement(d: DeploymentOut) -> str | None:
    wishes = []
    if d.gang:
        wishes.append("gang (all or none)")
    if d.affinity.value != "none":
        wishes.append(d.affinity.value)
    if d.selector:
        wishes.append(f"hosts with {d.selector}")
    if d.queue_timeout_s is not None:
        wishes.append(f"queue timeout {output.duration(d.queue_timeout_s)}")
    return "; ".join(wishes) or None


def _roles(d: DeploymentOut) -> str | None:
    if not d.roles:
        return None
    parts = []
    for role in d.roles:
        text = f"{role.name} x{role.count}"
        if role.provides:
            text += f" provides {','.join(role.provides)}"
        if role.requires:
            text += f" requires {','.join(role.requires)}"
        parts.append(text)
    return "; ".join(parts)


@app.command("wait")
def wait_deployment(
    ctx: typer.Context,
    deployment_id: DeploymentId,
    timeout: Timeout = None,
    poll: Poll = 2.0,
) -> None:
    """Wait until every VM of a deployment has ended; exit 1 unless all ended done or stopped.

    A bar shows how many VMs are in each state meanwhile. At the end, the VMs
    that did not end well are listed.
    """
    timeout_s = None if timeout is None else parse_duration(timeout)
    gv = client(ctx)
    deployment = gv.deployments.get(deployment_id)
    vms = wait_with_bar(gv, deployment.vms, timeout_s, poll, deployment.id)
    bad = [vm for vm in vms if vm.state not in GOOD_ENDS]
    if wants_json(ctx):
        output.print_json(gv.deployments.get(deployment.id))
    elif bad:
        vm_table(bad, title="VMs that did not end well")
    if bad:
        output.note(
            f"error: {len(bad)} of {len(vms)} VMs of {deployment.id} did not end well:"
            f" {counts_text(bad)} (see why with: gridvm vm show ID)"
        )
        raise typer.Exit(1)
    if not wants_json(ctx):
        output.info(f"all {len(vms)} VMs of {deployment.id} ended: {counts_text(vms)}")


@app.command("cancel")
def cancel_deployment(ctx: typer.Context, deployment_id: DeploymentId) -> None:
    """End every VM of a deployment that has not ended yet.

    Pending VMs are cancelled at once; the others are terminated on their hosts
    (their disks deleted, stopped single-mode VMs' included).
    """
    gv = client(ctx)
    before = gv.deployments.get(deployment_id)
    live = {vm.id for vm in before.vms if vm.state not in FINAL_STATES}
    after = gv.deployments.cancel(deployment_id)
    if wants_json(ctx):
        output.print_json(after)
        return
    ended = [vm for vm in after.vms if vm.id not in live]
    acted = [vm for vm in after.vms if vm.id in live]
    now = f" (now {counts_text(acted)})" if acted else ""
    output.info(
        f"deployment {after.id}: terminate requested for {_vms(len(acted))}{now};"
        f" {_vms(len(ended))} had ended already"
    )


def _vms(n: int) -> str:
    return "1 VM" if n == 1 else f"{n} VMs"


@app.command("redeploy-failed")
def redeploy_failed(ctx: typer.Context, deployment_id: DeploymentId) -> None:
    """Start the failed (and expired) VMs of a deployment over; the others keep their results."""
    gv = client(ctx)
    before = {vm.id: vm.attempt for vm in gv.deployments.get(deployment_id).vms}
    after = gv.deployments.redeploy_failed(deployment_id)
    again = [vm for vm in after.vms if vm.attempt > before.get(vm.id, vm.attempt)]
    if wants_json(ctx):
        output.print_json(after)
        return
    if not again:
        output.info(f"{deployment_id}: no failed VMs to redeploy ({_counts(after)})")
        return
    output.info(f"{deployment_id}: {len(again)} VM{'s' if len(again) != 1 else ''} started over")
    vm_table(again)
