"""``gridvm vm ...``: run VMs, watch them, change their state, read their console."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated

import typer

from gridvm.cli import output
from gridvm.cli.errors import exit_if, fail, for_each
from gridvm.cli.progress import vm_bar
from gridvm.cli.state import client, wants_json
from gridvm.cli.vm_views import counts_text, memory_text, vm_fields, vm_table
from gridvm.client import DEFAULT_UNTIL, Client, wait_for_vms
from gridvm.common.errors import InvalidInput
from gridvm.common.units import parse_duration, parse_size
from gridvm.schemas.vms import DeploymentOut, VmCreate, VmMode, VmOut, VmState

app = typer.Typer(help="Virtual machines: run, list, stop, console.", no_args_is_help=True)

MIB = 1024**2
GIB = 1024**3
# A run "went well" when every VM ended in one of these states.
GOOD_ENDS = frozenset({VmState.done, VmState.stopped})

VmIds = Annotated[list[str], typer.Argument(metavar="ID...", help="VM ids", show_default=False)]
VmId = Annotated[str, typer.Argument(metavar="ID", help="VM id", show_default=False)]


# --- parsing ---------------------------------------------------------------------------
def whole_units(text: str, unit: int, unit_name: str, what: str, example: str) -> int:
    """``text`` (a size) in whole ``unit``s; a size between two units is refused."""
    size = parse_size(text, default_unit=unit_name)
    if size % unit:
        raise InvalidInput(
            f"the {what} {text!r} is not a whole number of {unit_name}iB",
            hint=f"write it like {example}",
        )
    return size // unit


def _read_user_data(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        fail(
            f"{path} is not UTF-8 text",
            hint="user-data is a text file: a shell script or a #cloud-config document",
        )


# --- commands --------------------------------------------------------------------------
@app.command("run")
def run(
    ctx: typer.Context,
    image: Annotated[
        str, typer.Argument(metavar="IMAGE", help="image id or name", show_default=False)
    ],
    count: Annotated[int, typer.Option("--count", "-n", help="how many VMs")] = 1,
    cpus: Annotated[int, typer.Option("--cpus", "-c", help="vCPUs per VM")] = 1,
    memory: Annotated[
        str, typer.Option("--memory", "-m", help="memory per VM, e.g. 512M, 2G")
    ] = "256M",
    disk: Annotated[
        str | None, typer.Option("--disk", help="disk size per VM, e.g. 10G (default: the image's)")
    ] = None,
    user_data: Annotated[
        Path | None,
        typer.Option("--user-data", help="cloud-init user-data file (script or #cloud-config)"),
    ] = None,
    walltime: Annotated[
        str | None,
        typer.Option("--walltime", "-t", help="lease, e.g. 10m, 2h, 1d (default: the site's)"),
    ] = None,
    mode: Annotated[
        VmMode,
        typer.Option("--mode", help="multi: throw-away disks; single: one VM that keeps its disk"),
    ] = VmMode.multi,
    name: Annotated[
        str | None, typer.Option("--name", help="name of the deployment and its VMs")
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", "-w", help="wait until every VM has ended")
    ] = False,
    timeout: Annotated[
        str | None, typer.Option("--timeout", help="with --wait: give up after this long, e.g. 30m")
    ] = None,
    poll: Annotated[
        float, typer.Option("--poll", help="seconds between checks", hidden=True)
    ] = 2.0,
) -> None:
    """Start COUNT VMs of IMAGE as one deployment; --wait follows them to their end."""
    request = VmCreate(
        image=image,
        count=count,
        name=name,
        vcpus=cpus,
        memory_mb=whole_units(memory, MIB, "M", "memory size", "512M or 2G"),
        disk_gb=None if disk is None else whole_units(disk, GIB, "G", "disk size", "10G"),
        user_data=None if user_data is None else _read_user_data(user_data),
        walltime_s=None if walltime is None else parse_duration(walltime),
        mode=mode,
    )
    timeout_s = None if timeout is None else parse_duration(timeout)
    gv = client(ctx)
    deployment = gv.vms.create(request)
    if not wait and timeout is None:
        if wants_json(ctx):
            output.print_json(deployment)
        else:
            _print_deployment_created(deployment)
        return
    if not wants_json(ctx):
        _print_deployment_created(deployment)
    vms = _wait(gv, deployment.vms, timeout_s, poll, deployment.id)
    _print_outcome(ctx, vms, deployment=gv.deployments.get(deployment.id))


def _print_deployment_created(deployment: DeploymentOut) -> None:
    first = deployment.vms[0] if deployment.vms else None
    what = (
        ""
        if first is None
        else (
            f" of image {first.image_name}: {first.vcpus} vCPU, {memory_text(first.memory_mb)},"
            f" {first.mode.value} mode, walltime {output.duration(first.walltime_s)}"
        )
    )
    plural = "" if deployment.count == 1 else "s"
    output.info(
        f"deployment {deployment.id} ({deployment.name}): {deployment.count} VM{plural}{what}"
    )
    vm_table(deployment.vms)


def _wait(
    gv: Client,
    vms: Sequence[str | VmOut],
    timeout_s: int | None,
    poll: float,
    deployment: str | None,
) -> list[VmOut]:
    try:
        with vm_bar(len(vms), DEFAULT_UNTIL) as bar:
            return wait_for_vms(gv, vms, timeout=timeout_s, poll=poll, on_progress=bar)
    except KeyboardInterrupt:
        where = f"gridvm deployment show {deployment}" if deployment else "gridvm vm list"
        output.note(f"stopped waiting; the VMs go on (see them with: {where})")
        raise typer.Exit(130) from None


def _print_outcome(
    ctx: typer.Context, vms: list[VmOut], *, deployment: DeploymentOut | None = None
) -> None:
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


@app.command("wait")
def wait_command(
    ctx: typer.Context,
    ids: VmIds,
    timeout: Annotated[
        str | None, typer.Option("--timeout", help="give up after this long")
    ] = None,
    poll: Annotated[
        float, typer.Option("--poll", help="seconds between checks", hidden=True)
    ] = 2.0,
) -> None:
    """Wait until VMs have ended (done, failed, cancelled, expired or stopped)."""
    timeout_s = None if timeout is None else parse_duration(timeout)
    _print_outcome(ctx, _wait(client(ctx), ids, timeout_s, poll, None))


@app.command("list")
def list_vms(
    ctx: typer.Context,
    state: Annotated[
        VmState | None, typer.Option("--state", "-s", help="only VMs in this state")
    ] = None,
    deployment: Annotated[
        str | None, typer.Option("--deployment", "-d", help="only this deployment's VMs")
    ] = None,
    host: Annotated[str | None, typer.Option("--host", help="only VMs on this host")] = None,
    all_users: Annotated[bool, typer.Option("--all", "-a", help="everyone's VMs (admins)")] = False,
) -> None:
    """Your VMs, oldest first."""
    vms = client(ctx).vms.list(state=state, deployment=deployment, host=host, all=all_users)
    if wants_json(ctx):
        output.print_json(vms)
    elif not vms:
        output.note("no VMs")
    else:
        vm_table(vms)


@app.command("show")
def show_vm(ctx: typer.Context, vm_id: VmId) -> None:
    """One VM in full, with why it is pending or how it ended."""
    vm = client(ctx).vms.get(vm_id)
    if wants_json(ctx):
        output.print_json(vm)
    else:
        vm_fields(vm)


def _action_command(action: str, call: Callable[[Client, str], VmOut], doc: str) -> None:
    def command(ctx: typer.Context, ids: VmIds) -> None:
        gv = client(ctx)
        vms, failed = for_each(ids, lambda vm_id: call(gv, vm_id))
        if wants_json(ctx):
            output.print_json(vms)
        else:
            for vm in vms:
                # The request is accepted; the agent carries it out in a moment.
                output.info(f"{vm.id}: {action} requested (now {vm.state.value})")
        exit_if(failed)

    command.__doc__ = doc
    command.__name__ = f"{action}_vms"
    app.command(action)(command)


_action_command(
    "stop",
    lambda gv, i: gv.vms.stop(i),
    "Power VMs off (a pending VM is cancelled; a single-mode VM keeps its disk).",
)
_action_command("start", lambda gv, i: gv.vms.start(i), "Start stopped single-mode VMs again.")
_action_command(
    "terminate",
    lambda gv, i: gv.vms.terminate(i),
    "End VMs now and delete their disks, whatever their mode.",
)
_action_command("redeploy", lambda gv, i: gv.vms.redeploy(i), "Start VMs afresh from their image.")
_action_command(
    "suspend", lambda gv, i: gv.vms.suspend(i), "Pause running VMs (they keep their memory)."
)
_action_command("resume", lambda gv, i: gv.vms.resume(i), "Resume suspended VMs.")


@app.command("console")
def console(
    ctx: typer.Context,
    vm_id: VmId,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="keep printing until the VM ends")
    ] = False,
    poll: Annotated[
        float, typer.Option("--poll", help="seconds between checks", hidden=True)
    ] = 1.0,
) -> None:
    """Print a VM's serial console output."""
    gv = client(ctx)
    offset = 0
    ended = False
    last = b"\n"
    while True:
        data = gv.vms.console(vm_id, offset)
        if data:
            typer.echo(data, nl=False)
            offset += len(data)
            last = data[-1:]
        if not follow or ended:
            if last != b"\n":
                typer.echo("")  # the guest's last line often has no newline
            return
        if not data:
            # Read once more after the VM ended: its last output may arrive with its end.
            ended = gv.vms.get(vm_id).state in DEFAULT_UNTIL
            if not ended:
                time.sleep(poll)
