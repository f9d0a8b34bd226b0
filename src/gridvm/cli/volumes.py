"""``gridvm volume ...``: persistent user disks that one VM after another can use."""

from __future__ import annotations

from typing import Annotated

import typer

from gridvm.cli import output
from gridvm.cli.state import client, wants_json
from gridvm.schemas.volumes import VolumeOut

app = typer.Typer(
    help="Volumes: persistent disks for your data, attached to one VM at a time.",
    no_args_is_help=True,
)

VolumeRef = Annotated[
    str, typer.Argument(metavar="VOLUME", help="volume name or id", show_default=False)
]


def _fields(v: VolumeOut) -> None:
    output.show(
        output.fields(
            [
                ("id", v.id),
                ("name", v.name),
                ("state", output.state_cell(v.state.value)),
                ("size", output.size_cell(v.size_bytes)),
                ("vm", output.cell(v.vm)),
                ("host", output.cell(v.host or "none yet (made where a VM first uses it)")),
                ("guest device", f"the disk with serial {v.serial} (/sys/block/vd*/serial)"),
                ("owner", v.owner),
                ("created", output.timestamp(v.created_at)),
            ]
        )
    )


@app.command("create")
def create_volume(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="name to refer to it by (vm run --volume NAME)")],
    size: Annotated[str, typer.Option("--size", "-s", help="its size, e.g. 1G or 500M")],
) -> None:
    """Make an empty volume; it counts in your storage quota with its full size."""
    made = client(ctx).volumes.create(name, size)
    if wants_json(ctx):
        output.print_json(made)
    else:
        output.info(
            f"volume {made.name} ({made.id}) created: {output.size_cell(made.size_bytes)};"
            f" attach it with: gridvm vm run IMAGE --volume {made.name}"
        )


@app.command("list")
def list_volumes(
    ctx: typer.Context,
    all: Annotated[bool, typer.Option("--all", help="everyone's (admins)")] = False,
) -> None:
    """Your volumes, where they live and which VM holds each."""
    volumes = client(ctx).volumes.list(all=all)
    if wants_json(ctx):
        output.print_json(volumes)
        return
    if not volumes:
        output.note("no volumes (make one with: gridvm volume create NAME --size 1G)")
        return
    rows = [
        (
            v.name,
            v.id,
            output.size_cell(v.size_bytes),
            output.state_cell(v.state.value),
            output.cell(v.vm),
            output.cell(v.host),
            *((v.owner,) if all else ()),
        )
        for v in volumes
    ]
    columns = ("NAME", "ID", "SIZE", "STATE", "VM", "HOST", *(("OWNER",) if all else ()))
    output.show(output.table(columns, rows))


@app.command("show")
def show_volume(ctx: typer.Context, ref: VolumeRef) -> None:
    """One volume in full."""
    volume = client(ctx).volumes.get(ref)
    if wants_json(ctx):
        output.print_json(volume)
    else:
        _fields(volume)


@app.command("rm")
def remove_volume(ctx: typer.Context, ref: VolumeRef) -> None:
    """Delete a volume and its data (refused while a VM holds it)."""
    left = client(ctx).volumes.delete(ref)
    if wants_json(ctx):
        output.print_json({"deleted": left is None, "volume": left})
    elif left is None:
        output.info(f"volume {ref} deleted")
    else:
        output.info(f"volume {ref} is being deleted by the agent of host {left.host}")
