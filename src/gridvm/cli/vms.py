"""``gridvm vm ...``: run VMs, watch them, change their state, read their console."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from gridvm.cli import output
from gridvm.cli.attach import attach_console
from gridvm.cli.errors import exit_if, fail, for_each
from gridvm.cli.params import read_param_file
from gridvm.cli.results import download_results
from gridvm.cli.roles import parse_role
from gridvm.cli.state import client, wants_json
from gridvm.cli.vm_views import memory_text, runs_table, vm_fields, vm_table
from gridvm.cli.waiting import Poll, Timeout, print_outcome, wait_with_bar
from gridvm.client import DEFAULT_UNTIL, Client
from gridvm.common.errors import InvalidInput
from gridvm.common.units import parse_duration, parse_size
from gridvm.schemas.hosts import Zone
from gridvm.schemas.scheduling import Affinity
from gridvm.schemas.vms import DeploymentOut, LaunchFile, VmCreate, VmMode, VmOut, VmState

app = typer.Typer(help="Virtual machines: run, list, stop, console, results.", no_args_is_help=True)

MIB = 1024**2
GIB = 1024**3

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
    count: Annotated[
        int | None,
        typer.Option(
            "--count", "-n", help="how many VMs (default: 1, or one per row of --param-file)"
        ),
    ] = None,
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
    param_file: Annotated[
        Path | None,
        typer.Option(
            "--param-file",
            help="parameter scan: a CSV file with a header row; one VM per row, which its job"
            " sees as environment variables named by the header",
        ),
    ] = None,
    max_running: Annotated[
        int | None,
        typer.Option(
            "--max-running", help="run at most this many of the VMs at once; the others wait"
        ),
    ] = None,
    secret: Annotated[
        list[str] | None,
        typer.Option(
            "--secret",
            help="a stored secret the job gets in $GRIDVM_SECRETS/NAME (repeatable)",
        ),
    ] = None,
    ssh_key: Annotated[
        list[str] | None,
        typer.Option("--ssh-key", help="an SSH key of your account to install (repeatable)"),
    ] = None,
    file: Annotated[
        list[str] | None,
        typer.Option(
            "--file",
            metavar="LOCAL:/GUEST/PATH",
            help="a local file put at GUEST/PATH before the job runs (repeatable)",
        ),
    ] = None,
    role: Annotated[
        list[str] | None,
        typer.Option(
            "--role",
            metavar="NAME[:COUNT][:provides=A,B][:requires=C]",
            help="a group context: COUNT VMs in role NAME (repeatable); each VM's job sees"
            " $GRIDVM_ROLE and finds the VMs whose roles provide what it requires with"
            " gridvm-guest peers",
        ),
    ] = None,
    gang: Annotated[
        bool, typer.Option("--gang", help="start all the VMs together or none of them")
    ] = False,
    affinity: Annotated[
        Affinity,
        typer.Option(
            "--affinity", help="same-host: all on one host; different-hosts: no two on one"
        ),
    ] = Affinity.none,
    require: Annotated[
        str | None,
        typer.Option(
            "--require",
            metavar="SELECTOR",
            help="only hosts whose labels match, e.g. 'site in (a,b), cpu_flags contains avx2,"
            " mem_gb >= 64'",
        ),
    ] = None,
    queue_timeout: Annotated[
        str | None,
        typer.Option("--queue-timeout", help="fail the VMs still waiting after this long, e.g. 2h"),
    ] = None,
    zone: Annotated[
        Zone | None,
        typer.Option(
            "--zone",
            help="network zone: trusted (site and certified images) or dmz (any image;"
            " default for user images)",
        ),
    ] = None,
    walltime: Annotated[
        str | None,
        typer.Option("--walltime", "-t", help="lease, e.g. 10m, 2h, 1d (default: the site's)"),
    ] = None,
    volume: Annotated[
        list[str] | None,
        typer.Option(
            "--volume",
            help="a volume of yours to attach (repeatable; one VM only); the guest finds it"
            " by its serial, the volume's id (gridvm volume show)",
        ),
    ] = None,
    allow_egress: Annotated[
        list[str] | None,
        typer.Option(
            "--allow-egress",
            metavar="HOST:PORT[/udp]",
            help="an outbound connection the VMs may open (repeatable): ADDRESS, CIDR or a"
            " name (resolved now) and a port, e.g. 192.0.2.10:443, 10.1.0.0/16:5432",
        ),
    ] = None,
    vm_to_vm: Annotated[
        bool,
        typer.Option(
            "--vm-to-vm",
            help="let the deployment's VMs connect to each other (also across hosts)",
        ),
    ] = False,
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
    """Start VMs of IMAGE as one deployment; --wait follows them to their end.

    A parameter scan: --param-file params.csv starts one VM per row; the job
    (--user-data) sees the row's columns as environment variables named by the
    header, GRIDVM_INDEX (the 0-based row) and GRIDVM_OUTPUT, a folder whose
    files become the VM's results (gridvm vm results).
    """
    if max_running is not None and max_running < 1:
        fail(f"--max-running {max_running}: at least 1 VM must be allowed to run")
    params = None if param_file is None else read_param_file(param_file)
    if params is not None:
        if count is not None and count != len(params):
            fail(
                f"-n {count} does not match the {len(params)} rows of {param_file}",
                hint="leave -n out: a parameter scan starts one VM per row",
            )
        count = len(params)
    roles = [parse_role(spec) for spec in role] if role else None
    if roles is not None:
        members = sum(r.count for r in roles)
        if count is not None and count != members:
            fail(
                f"-n {count} does not match the roles, which add up to {members} VMs",
                hint="leave -n out: the roles' counts make the deployment",
            )
        count = members
    request = VmCreate(
        image=image,
        count=1 if count is None else count,
        params=params,
        max_running=max_running,
        name=name,
        vcpus=cpus,
        memory_mb=whole_units(memory, MIB, "M", "memory size", "512M or 2G"),
        disk_gb=None if disk is None else whole_units(disk, GIB, "G", "disk size", "10G"),
        user_data=None if user_data is None else _read_user_data(user_data),
        walltime_s=None if walltime is None else parse_duration(walltime),
        mode=mode,
        secrets=secret or [],
        ssh_keys=ssh_key or [],
        files=[_launch_file(spec) for spec in file or []],
        roles=roles,
        gang=gang,
        affinity=affinity,
        selector=require,
        queue_timeout_s=None if queue_timeout is None else parse_duration(queue_timeout),
        zone=zone,
        volumes=volume or [],
        allow_egress=allow_egress or [],
        vm_to_vm=vm_to_vm,
    )
    timeout_s = None if timeout is None else parse_duration(timeout)
    gv = client(ctx)
    deployment = gv.vms.create(request)
    if not wait and timeout is None:
        if wants_json(ctx):
            output.print_json(deployment)
        else:
            _print_deployment_created(deployment, max_running)
        return
    if not wants_json(ctx):
        _print_deployment_created(deployment, max_running)
    vms = wait_with_bar(gv, deployment.vms, timeout_s, poll, deployment.id)
    print_outcome(ctx, vms, deployment=gv.deployments.get(deployment.id))


def _launch_file(spec: str) -> LaunchFile:
    local, sep, guest = spec.rpartition(":")
    if not sep or not local or not guest.startswith("/"):
        fail(f"--file {spec!r}: expected LOCAL:/GUEST/PATH", hint="e.g. --file in.csv:/root/in.csv")
    path = Path(local)
    if not path.is_file():
        fail(f"--file {spec!r}: {local} is not a file")
    return LaunchFile(path=guest, content_b64=base64.b64encode(path.read_bytes()).decode())


def _print_deployment_created(deployment: DeploymentOut, max_running: int | None) -> None:
    first = deployment.vms[0] if deployment.vms else None
    what = (
        ""
        if first is None
        else (
            f" of image {first.image_name}: {first.vcpus} vCPU, {memory_text(first.memory_mb)},"
            f" {first.mode.value} mode, walltime {output.duration(first.walltime_s)}"
        )
    )
    if max_running is not None and max_running < deployment.count:
        what += f", at most {max_running} running at once"
    plural = "" if deployment.count == 1 else "s"
    output.info(
        f"deployment {deployment.id} ({deployment.name}): {deployment.count} VM{plural}{what}"
    )
    vm_table(deployment.vms)


@app.command("wait")
def wait_command(
    ctx: typer.Context,
    ids: VmIds,
    timeout: Timeout = None,
    poll: Poll = 2.0,
) -> None:
    """Wait until VMs have ended (done, failed, cancelled, expired or stopped)."""
    timeout_s = None if timeout is None else parse_duration(timeout)
    print_outcome(ctx, wait_with_bar(client(ctx), ids, timeout_s, poll, None))


@app.command("list")
def list_vms(
    ctx: typer.Context,
    state: Annotated[
        list[VmState] | None,
        typer.Option(
            "--state",
            "-s",
            metavar="STATE",
            help=f"only VMs in this state: {', '.join(VmState)} (repeat for several)",
        ),
    ] = None,
    deployment: Annotated[
        str | None, typer.Option("--deployment", "-d", help="only this deployment's VMs")
    ] = None,
    host: Annotated[str | None, typer.Option("--host", help="only VMs on this host")] = None,
    all_users: Annotated[bool, typer.Option("--all", "-a", help="everyone's VMs (admins)")] = False,
    limit: Annotated[
        int | None,
        typer.Option("--limit", help="at most this many VMs (1-1000; default: all)", min=1),
    ] = None,
    offset: Annotated[
        int, typer.Option("--offset", help="skip this many VMs first (with --limit: paging)", min=0)
    ] = 0,
) -> None:
    """Your VMs, oldest first (--limit 50 --offset 50: the second page of 50)."""
    found = client(ctx).vms.page(
        deployment=deployment,
        host=host,
        all=all_users,
        states=state or (),
        limit=limit,
        offset=offset,
    )
    vms = found.vms
    if wants_json(ctx):
        output.print_json(vms)
    elif not vms:
        output.note("no VMs" if found.total == 0 else f"no VMs here: {found.total} in all")
    else:
        vm_table(vms)
        if len(vms) < found.total:
            output.note(f"VMs {offset + 1}-{offset + len(vms)} of {found.total}")


@app.command("show")
def show_vm(ctx: typer.Context, vm_id: VmId) -> None:
    """One VM in full, with why it is pending or how it ended."""
    vm = client(ctx).vms.get(vm_id)
    if wants_json(ctx):
        output.print_json(vm)
    else:
        vm_fields(vm)


@app.command("runs")
def vm_runs(ctx: typer.Context, vm_id: VmId) -> None:
    """Each run of one VM: a start after a stop and a redeploy each begin a new run."""
    runs = client(ctx).vms.runs(vm_id)
    if wants_json(ctx):
        output.print_json(runs)
    elif not runs:
        output.note(f"VM {vm_id} has not run yet")
    else:
        runs_table(runs)


@app.command("attach")
def attach_volume(
    ctx: typer.Context,
    vm_id: VmId,
    volume: Annotated[str, typer.Argument(metavar="VOLUME", help="volume name or id")],
) -> None:
    """Attach a volume to a stopped single-mode VM; it has it from its next start."""
    attached = client(ctx).volumes.attach(vm_id, volume)
    if wants_json(ctx):
        output.print_json(attached)
    else:
        output.info(f"volume {attached.name} attached to VM {vm_id} (serial {attached.serial})")


@app.command("detach")
def detach_volume(
    ctx: typer.Context,
    vm_id: VmId,
    volume: Annotated[str, typer.Argument(metavar="VOLUME", help="volume name or id")],
) -> None:
    """Detach a volume from a stopped single-mode VM (VMs that end let go of theirs)."""
    detached = client(ctx).volumes.detach(vm_id, volume)
    if wants_json(ctx):
        output.print_json(detached)
    else:
        output.info(f"volume {detached.name} detached from VM {vm_id}")


@app.command("results")
def results(
    ctx: typer.Context,
    ref: Annotated[
        str,
        typer.Argument(
            metavar="ID|DEPLOYMENT_ID",
            help="a VM id, or a deployment id (dep-...) for all its VMs' results",
            show_default=False,
        ),
    ],
    directory: Annotated[
        Path,
        typer.Option("--dir", "-d", help="where to put one folder per VM, named after the VM"),
    ] = Path(),
    force: Annotated[
        bool,
        typer.Option("--force", "-f", help="replace a VM's folder that holds files already"),
    ] = False,
) -> None:
    """Download the files jobs left in $GRIDVM_OUTPUT into DIR/VM_NAME/, one folder per VM."""
    download_results(ctx, ref, directory, force)


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


@app.command("extend")
def extend(
    ctx: typer.Context,
    vm_id: VmId,
    by: Annotated[str, typer.Option("--by", help="how much longer, e.g. 2h")],
) -> None:
    """Lengthen a VM's walltime (its lease), within the site's longest walltime."""
    vm = client(ctx).vms.extend(vm_id, parse_duration(by))
    if wants_json(ctx):
        output.print_json(vm)
        return
    until = f", now until {output.timestamp(vm.expires_at)}" if vm.expires_at else ""
    output.info(f"{vm.id}: walltime {output.duration(vm.walltime_s)}{until}")


@app.command("save")
def save(
    ctx: typer.Context,
    vm_id: Annotated[str, typer.Argument(metavar="ID", help="a stopped single-mode VM")],
    name: Annotated[str, typer.Option("--name", help="name of the new image")],
    wait: Annotated[
        bool, typer.Option("--wait/--no-wait", help="wait until the image exists")
    ] = True,
    timeout: Annotated[str, typer.Option("--timeout", help="give up after this long")] = "30m",
    poll: Annotated[float, typer.Option("--poll", hidden=True)] = 1.0,
) -> None:
    """Save a stopped single-mode VM's disk as a new private image (usable for scans)."""
    gv = client(ctx)
    vm = gv.vms.save(vm_id, name)
    if not wait:
        output.info(f"{vm.id}: saving as image {name} (see gridvm vm show {vm.id})")
        return
    deadline = time.monotonic() + parse_duration(timeout)
    while vm.saving_as is not None:
        if time.monotonic() > deadline:
            fail(
                f"{vm.id} is still being saved as {name}",
                hint=f"check later: gridvm image show {name}",
            )
        time.sleep(poll)
        vm = gv.vms.get(vm_id)
    if vm.save_error is not None:
        fail(f"saving {vm.id} as {name} failed: {vm.save_error}")
    image = gv.images.get(name)
    if wants_json(ctx):
        output.print_json(image)
    else:
        output.info(f"image {image.name} ({image.id}) saved from {vm.id}")


@app.command("console")
def console(
    ctx: typer.Context,
    vm_id: VmId,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="keep printing until the VM ends")
    ] = False,
    attach: Annotated[
        bool,
        typer.Option(
            "--attach",
            help="interactive console of the running VM (Ctrl-] detaches); its output"
            " still goes to the log",
        ),
    ] = False,
    linger: Annotated[
        float,
        typer.Option(
            "--linger",
            min=0,
            metavar="SECONDS",
            help="with --attach and input from a pipe or file: after the input ends, detach"
            " once the console has been quiet this long",
        ),
    ] = 2.0,
    poll: Annotated[
        float, typer.Option("--poll", help="seconds between checks", hidden=True)
    ] = 1.0,
) -> None:
    """Print a VM's serial console output, or attach to it (--attach)."""
    gv = client(ctx)
    if attach:
        if follow:
            fail("--attach and --follow do not go together", hint="--attach prints as it comes")
        attach_console(gv, vm_id, linger)
        return
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
