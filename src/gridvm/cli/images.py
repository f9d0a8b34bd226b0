"""``gridvm image ...``: upload, list, show, download, rename, share, delete."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gridvm.cli import image_inspection, output, upload_state
from gridvm.cli.certification import trust_text
from gridvm.cli.errors import exit_if, fail, for_each
from gridvm.cli.progress import transfer_bar
from gridvm.cli.state import client, wants_json
from gridvm.client import ApiError, Client, NotFoundError
from gridvm.client.uploads import UploadInterrupted
from gridvm.common.units import format_size
from gridvm.schemas.images import ExportFormat, ImageOut, UploadOut, Visibility

app = typer.Typer(help="Disk images: upload, share, download, delete.", no_args_is_help=True)

IMAGE_SUFFIXES = (".qcow2", ".qcow", ".img", ".raw", ".vmdk", ".vdi")

Ref = Annotated[
    str,
    typer.Argument(
        metavar="REF",
        help="image id, NAME (its latest version) or NAME:N (version N)",
        show_default=False,
    ),
]

image_inspection.register(app)


def image_table(images: list[ImageOut]) -> None:
    rows = [
        (
            i.id,
            i.name,
            f"{i.version}{' (latest)' if i.latest else ''}",
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
    columns = (
        "ID",
        "NAME",
        "VERSION",
        "OWNER",
        "VISIBILITY",
        "TRUST",
        "DISK",
        "STORED",
        "FROM",
        "CREATED",
    )
    output.show(output.table((*columns, "VMS"), rows))


def image_fields(i: ImageOut) -> None:
    uploaded = "" if i.uploaded_format == i.format else f" (uploaded as {i.uploaded_format})"
    output.show(
        output.fields(
            [
                ("id", i.id),
                ("name", i.name),
                ("version", f"{i.version}{' (latest)' if i.latest else ''}"),
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
    all_versions: Annotated[
        bool, typer.Option("--all-versions", help="every version, not only the latest of each name")
    ] = False,
) -> None:
    """The images you may use: yours, your groups' shared ones and public ones (the latest
    version of each name unless --all-versions)."""
    images = client(ctx).images.list(name=name, all_versions=all_versions)
    if wants_json(ctx):
        output.print_json(images)
    elif not images:
        output.note("no images (upload one with: gridvm image upload FILE --name NAME)")
    else:
        image_table(images)


@app.command("versions")
def versions(ctx: typer.Context, ref: Ref) -> None:
    """Every version of an image's name, oldest first (run NAME:N to pin one)."""
    images = client(ctx).images.versions(ref)
    if wants_json(ctx):
        output.print_json(images)
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
        str | None,
        typer.Option(
            "--name",
            "-n",
            help="image name (default: the file's name); a name you have"
            " already gets a new version",
        ),
    ] = None,
    visibility: Annotated[
        Visibility, typer.Option("--visibility", help="who may use it")
    ] = Visibility.private,
    resume: Annotated[
        str | None,
        typer.Option("--resume", metavar="UPLOAD_ID", help="continue this interrupted upload"),
    ] = None,
) -> None:
    """Upload a disk image in resumable chunks; the server checks it and stores it as qcow2.

    If the upload breaks off, run the same command again (it continues where the server
    stopped receiving), or pass --resume UPLOAD_ID.
    """
    if file.is_dir():
        fail(f"{file} is a directory", hint="upload a disk image file")
    size = file.stat().st_size
    image_name = name or _default_name(file)
    gv = client(ctx)
    key = upload_state.file_key(gv.url, file, image_name)
    session = _session_to_resume(gv, resume or upload_state.remembered(key), explicit=resume)
    if session is not None and resume is None and session.name != image_name:
        session = None  # the same file under another name: a new upload
    if session is None:
        session = gv.images.uploads.create(image_name, size, visibility)
        upload_state.remember(key, session.id)
    else:
        output.note(f"continuing upload {session.id} from byte {session.received_bytes}")
    with transfer_bar(f"uploading {file.name}", size, done_description="checking the image") as bar:
        try:
            session = gv.images.uploads.send_file(file, session, progress=bar)
        except UploadInterrupted as exc:
            fail(
                exc.message,
                hint=f"continue it with: gridvm image upload {file} --resume"
                f" {exc.upload_id} (or run the same command again)",
            )
        try:
            image = gv.images.uploads.complete(session.id)
        except ApiError as exc:
            if exc.status != 413:  # a refused image ends the session; a quota refusal keeps it
                upload_state.forget(key)
            raise
    upload_state.forget(key)
    if wants_json(ctx):
        output.print_json(image)
        return
    output.info(f"uploaded image {image.name}:{image.version} ({image.id})")
    image_fields(image)


@app.command("uploads")
def list_uploads(ctx: typer.Context) -> None:
    """Your uploads under way (interrupted ones can be resumed or aborted)."""
    found = client(ctx).images.uploads.list()
    if wants_json(ctx):
        output.print_json(found)
    elif not found:
        output.note("no uploads under way")
    else:
        rows = [
            (
                u.id,
                u.name,
                output.size_cell(u.received_bytes),
                output.size_cell(u.total_bytes) if u.total_bytes is not None else "-",
                output.relative(u.updated_at),
            )
            for u in found
        ]
        output.show(output.table(("ID", "NAME", "RECEIVED", "OF", "LAST CHUNK"), rows))


@app.command("abort-upload")
def abort_upload(
    ctx: typer.Context,
    upload_id: Annotated[str, typer.Argument(metavar="UPLOAD_ID", help="see gridvm image uploads")],
) -> None:
    """Abort an upload under way: the server deletes what it received."""
    client(ctx).images.uploads.abort(upload_id)
    if wants_json(ctx):
        output.print_json({"id": upload_id, "aborted": True})
    else:
        output.info(f"aborted upload {upload_id}")


def _session_to_resume(
    gv: Client, upload_id: str | None, *, explicit: str | None
) -> UploadOut | None:
    if upload_id is None:
        return None
    try:
        return gv.images.uploads.get(upload_id)
    except NotFoundError:
        if explicit is not None:
            raise
        return None  # finished, aborted or expired: start afresh


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
        typer.Option(
            "--out", "-o", help="file or directory to save to (default: NAME.qcow2 or NAME.raw)"
        ),
    ] = None,
    fmt: Annotated[
        ExportFormat, typer.Option("--format", help="qcow2 (as stored) or raw")
    ] = ExportFormat.qcow2,
    force: Annotated[
        bool, typer.Option("--force", "-f", help="overwrite an existing file")
    ] = False,
    resume: Annotated[
        bool,
        typer.Option(
            "--continue", "-c", help="continue a partial download (FILE.part, or FILE itself)"
        ),
    ] = False,
) -> None:
    """Save an image to a local file (qcow2, or raw with --format raw), verified at the end."""
    gv = client(ctx)
    image = gv.images.get(ref)
    default = f"{image.name}.{fmt.value}"
    dest = out if out is not None else Path(default)
    if dest.is_dir():
        dest = dest / default
    if not dest.parent.is_dir():
        fail(f"there is no directory {dest.parent}", hint="create it, or -o another file")
    if dest.exists() and not force and not resume:
        fail(f"{dest} exists already", hint="pass --force to overwrite it, or -o another file")
    total = image.size if fmt == ExportFormat.qcow2 else image.virtual_size
    with transfer_bar(f"downloading {image.name}:{image.version}", total) as bar:
        gv.images.download(image.id, dest, progress=bar, format=fmt, resume=resume)
    if wants_json(ctx):
        output.print_json({"path": str(dest), "image": image.model_dump(mode="json")})
    else:
        output.info(
            f"saved image {image.name}:{image.version} ({format_size(total)}, {fmt.value})"
            f" to {dest}"
        )


@app.command("rename")
def rename(
    ctx: typer.Context,
    ref: Ref,
    new_name: Annotated[str, typer.Argument(metavar="NEW_NAME", help="the new name")],
) -> None:
    """Give an image a new name (all versions of its name move together)."""
    image = client(ctx).images.update(ref, name=new_name)
    _one(ctx, image, f"renamed {ref} to {image.name} ({image.id})")


@app.command("copy")
def copy(
    ctx: typer.Context,
    source: Annotated[
        str,
        typer.Argument(
            metavar="SOURCE",
            help="image to copy: id, NAME or NAME:N (a site template, say)",
            show_default=False,
        ),
    ],
    new_name: Annotated[
        str,
        typer.Argument(metavar="NEW_NAME", help="name of your copy (a name you have: new version)"),
    ],
) -> None:
    """Make your own private copy of an image you may use (no bytes are copied; a copy of
    a site template or certified image is certified)."""
    image = client(ctx).images.copy(source, new_name)
    _one(
        ctx,
        image,
        f"copied {source} to {image.name}:{image.version} ({image.id}, class {image.trust})",
    )


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


@app.command("template")
def template(
    ctx: typer.Context,
    ref: Ref,
    remove: Annotated[
        bool, typer.Option("--remove", help="stop it being a template (its class falls back)")
    ] = False,
) -> None:
    """Make one of your images (an admin's) a site template everyone may run and build on."""
    image = client(ctx).images.make_template(ref, template=not remove)
    what = "is no longer a site template" if remove else "is now a public site template"
    _one(ctx, image, f"image {image.name}:{image.version} {what} (class {image.trust})")


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
    refs: Annotated[list[str], typer.Argument(metavar="REF...", help="image ids, NAME:N or NAME")],
    all_versions: Annotated[
        bool, typer.Option("--all-versions", help="delete every version of each NAME")
    ] = False,
) -> None:
    """Delete images that no VM uses: NAME:N or an id deletes that version; NAME deletes
    its only version (a name with several needs NAME:N or --all-versions)."""
    gv = client(ctx)

    def delete(ref: str) -> str:
        gv.images.delete(ref, all_versions=all_versions)
        return ref

    deleted, failed = for_each(refs, delete)
    if wants_json(ctx):
        output.print_json([{"image": ref, "deleted": True} for ref in deleted])
    else:
        for ref in deleted:
            output.info(f"deleted image {ref}")
    exit_if(failed)
