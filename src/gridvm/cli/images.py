"""``gridvm image ...``: upload, list, show, download, rename, share, delete."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gridvm.cli import image_inspection, output
from gridvm.cli.certification import trust_text
from gridvm.cli.errors import exit_if, fail, for_each
from gridvm.cli.progress import transfer_bar
from gridvm.cli.state import client, wants_json
from gridvm.common.units import format_size
from gridvm.schemas.images import ImageOut, Visibility

app = typer.Typer(help="Disk images: upload, share, download, delete.", no_args_is_help=True)

IMAGE_SUFFIXES = (".qcow2", ".qcow", ".img", ".raw", ".vmdk", ".vdi")

Ref = Annotated[str, typer.Argument(metavar="REF", help="image id, or name", show_default=False)]

image_inspection.register(app)


def image_table(images: list[ImageOut]) -> None:
    rows = [
        (
            i.id,
            i.name,
            i.owner,
            i.visibility.value,
            trust_text(i),
            output.size_cell(i.virtual_size),
            output.size_cell(i.size),
            i.uploaded_format,
            output.relative(i.created_at),
            str(i.in_use_by),
        )
        for i in images
    ]
    columns = ("ID", "NAME", "OWNER", "VISIBILITY", "TRUST", "DISK", "STORED", "FROM", "CREATED")
    output.show(output.table((*columns, "VMS"), rows))


def image_fields(i: ImageOut) -> None:
    uploaded = "" if i.uploaded_format == i.format else f" (uploaded as {i.uploaded_format})"
    output.show(
        output.fields(
            [
                ("id", i.id),
                ("name", i.name),
                ("owner", i.owner),
                ("group", output.cell(i.group)),
                ("visibility", i.visibility.value),
                ("trust", trust_text(i)),
                ("format", f"{i.format}{uploaded}"),
                ("disk size", f"{format_size(i.virtual_size)} ({i.virtual_size} bytes)"),
                ("stored size", f"{format_size(i.size)} ({i.size} bytes)"),
                ("digest", i.digest),
                ("boot", i.boot_mode.value),
                ("kernel cmdline", output.cell(i.kernel_cmdline)),
                ("os", output.cell(i.os)),
                ("min memory", f"{i.min_memory_mb} MiB"),
                ("created", output.timestamp(i.created_at)),
                ("used by", f"{i.in_use_by} VM{'' if i.in_use_by == 1 else 's'}"),
            ]
        )
    )


def _one(ctx: typer.Context, image: ImageOut, message: str) -> None:
    if wants_json(ctx):
        output.print_json(image)
    else:
        output.info(message)


@app.command("list")
def list_images(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Option("--name", help="only images with this name")] = None,
) -> None:
    """The images you may use: yours, your groups' shared ones and public ones."""
    images = client(ctx).images.list(name=name)
    if wants_json(ctx):
        output.print_json(images)
    elif not images:
        output.note("no images (upload one with: gridvm image upload FILE --name NAME)")
    else:
        image_table(images)


@app.command("show")
def show_image(ctx: typer.Context, ref: Ref) -> None:
    """One image in full."""
    image = client(ctx).images.get(ref)
    if wants_json(ctx):
        output.print_json(image)
    else:
        image_fields(image)


@app.command("upload")
def upload(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Argument(metavar="FILE", help="qcow2, raw, vmdk or vdi disk image")
    ],
    name: Annotated[
        str | None, typer.Option("--name", "-n", help="image name (default: the file's name)")
    ] = None,
    visibility: Annotated[
        Visibility, typer.Option("--visibility", help="who may use it")
    ] = Visibility.private,
) -> None:
    """Upload a disk image; the server checks it and stores it as qcow2."""
    size = file.stat().st_size
    if file.is_dir():
        fail(f"{file} is a directory", hint="upload a disk image file")
    image_name = name or _default_name(file)
    gv = client(ctx)
    with transfer_bar(f"uploading {file.name}", size, done_description="checking the image") as bar:
        image = gv.images.upload(file, image_name, visibility, progress=bar)
    if wants_json(ctx):
        output.print_json(image)
        return
    output.info(f"uploaded image {image.name} ({image.id})")
    image_fields(image)


def _default_name(file: Path) -> str:
    """``ubuntu-22.04.qcow2`` → ``ubuntu-22.04``."""
    for suffix in IMAGE_SUFFIXES:
        if file.name.lower().endswith(suffix) and len(file.name) > len(suffix):
            return file.name[: -len(suffix)]
    return file.name


@app.command("download")
def download(
    ctx: typer.Context,
    ref: Ref,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="file or directory to save to (default: NAME.qcow2)"),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", "-f", help="overwrite an existing file")
    ] = False,
) -> None:
    """Save an image (as qcow2) to a local file."""
    gv = client(ctx)
    image = gv.images.get(ref)
    dest = out if out is not None else Path(f"{image.name}.qcow2")
    if dest.is_dir():
        dest = dest / f"{image.name}.qcow2"
    if not dest.parent.is_dir():
        fail(f"there is no directory {dest.parent}", hint="create it, or -o another file")
    if dest.exists() and not force:
        fail(f"{dest} exists already", hint="pass --force to overwrite it, or -o another file")
    with transfer_bar(f"downloading {image.name}", image.size) as bar:
        gv.images.download(image.id, dest, progress=bar)
    if wants_json(ctx):
        output.print_json({"path": str(dest), "image": image.model_dump(mode="json")})
    else:
        output.info(f"saved image {image.name} ({format_size(image.size)}, qcow2) to {dest}")


@app.command("rename")
def rename(
    ctx: typer.Context,
    ref: Ref,
    new_name: Annotated[str, typer.Argument(metavar="NEW_NAME", help="the new name")],
) -> None:
    """Give an image a new name."""
    image = client(ctx).images.update(ref, name=new_name)
    _one(ctx, image, f"renamed {ref} to {image.name} ({image.id})")


@app.command("share")
def share(
    ctx: typer.Context,
    ref: Ref,
    with_: Annotated[
        Visibility,
        typer.Option(
            "--with",
            help="group: your group may use it; public: everyone (admins only); private: only you",
        ),
    ] = Visibility.group,
) -> None:
    """Let your group (or everyone) use an image."""
    image = client(ctx).images.update(ref, visibility=with_)
    _one(ctx, image, _visibility_message(image))


@app.command("unshare")
def unshare(ctx: typer.Context, ref: Ref) -> None:
    """Make an image private again (VMs already running keep running)."""
    image = client(ctx).images.update(ref, visibility=Visibility.private)
    _one(ctx, image, _visibility_message(image))


def _visibility_message(image: ImageOut) -> str:
    who = {
        Visibility.private: f"private: only {image.owner} may use it",
        Visibility.group: f"shared with group {image.group}",
        Visibility.public: "public: everyone may use it",
    }[image.visibility]
    return f"image {image.name} ({image.id}) is {who}"


@app.command("rm")
def remove(
    ctx: typer.Context,
    refs: Annotated[list[str], typer.Argument(metavar="REF...", help="image ids or names")],
) -> None:
    """Delete images that no VM uses."""
    gv = client(ctx)

    def delete(ref: str) -> str:
        gv.images.delete(ref)
        return ref

    deleted, failed = for_each(refs, delete)
    if wants_json(ctx):
        output.print_json([{"image": ref, "deleted": True} for ref in deleted])
    else:
        for ref in deleted:
            output.info(f"deleted image {ref}")
    exit_if(failed)
