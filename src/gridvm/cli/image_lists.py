"""``gridvm image-list ...``: export this site's signed image list, follow other sites'."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from gridvm.cli import output
from gridvm.cli.errors import describe_os_error, fail
from gridvm.cli.state import client, wants_json
from gridvm.schemas.image_lists import SubscriptionOut

app = typer.Typer(
    help="Signed HEPiX image lists: export this site's, subscribe to other sites'.",
    no_args_is_help=True,
)

Name = Annotated[str, typer.Argument(metavar="NAME", help="subscription name")]


def _fields(sub: SubscriptionOut) -> None:
    output.show(
        output.fields(
            [
                ("name", sub.name),
                ("url", sub.url),
                ("endorser", sub.endorser_dn),
                ("list", output.cell(sub.list_identifier)),
                ("expires", output.timestamp(sub.list_expires_at)),
                ("checked", output.timestamp(sub.last_checked_at)),
                ("images", f"{sub.images} ({sub.certified} certified)"),
                ("last error", output.cell(sub.last_error)),
            ]
        )
    )


def _outcome(ctx: typer.Context, sub: SubscriptionOut, done: str) -> None:
    if wants_json(ctx):
        output.print_json(sub)
    else:
        _fields(sub)
    if sub.last_error:
        fail(
            f"image list {sub.name}: {sub.last_error}",
            hint=f"see: gridvm image-list list; try again: gridvm image-list refresh {sub.name}",
        )
    if not wants_json(ctx):
        output.info(done)


@app.command("export")
def export(
    ctx: typer.Context,
    out: Annotated[
        Path, typer.Option("--output-file", "-o", help="where to write the signed list (S/MIME)")
    ],
) -> None:
    """Write this site's public site and certified images as a HEPiX image list, signed by
    the site's endorser (security officers and admins)."""
    message = client(ctx).image_lists.export()
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(message)
    except OSError as exc:
        fail(f"cannot write the list: {describe_os_error(exc)}")
    output.info(f"signed image list written to {out} ({len(message)} bytes)")


@app.command("subscribe")
def subscribe(
    ctx: typer.Context,
    name: Name,
    url: Annotated[str, typer.Argument(metavar="URL", help="where the signed list is")],
    endorser_dn: Annotated[
        str,
        typer.Option("--endorser-dn", help="the DN the list must be signed by: /O=Site/CN=Name"),
    ],
    ca: Annotated[
        Path, typer.Option("--ca", help="PEM file of the CA the endorser's certificate is from")
    ],
) -> None:
    """Follow another site's signed list: its images become certified images here, for as
    long as the list names them and has not expired (security officers and admins)."""
    try:
        ca_pem = ca.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read the CA file {ca}: {exc}", hint="give the CA certificate (PEM)")
    sub = client(ctx).image_lists.subscribe(name, url, endorser_dn, ca_pem)
    _outcome(ctx, sub, f"subscribed to {name}: {sub.images} image(s)")


@app.command("list")
def list_subscriptions(ctx: typer.Context) -> None:
    """The image lists this site follows, with the outcome of their last check."""
    subs = client(ctx).image_lists.list()
    if wants_json(ctx):
        output.print_json(subs)
        return
    if not subs:
        output.note("no subscriptions (add one with: gridvm image-list subscribe NAME URL ...)")
        return
    rows = [
        (
            s.name,
            s.url,
            f"{s.images} ({s.certified} certified)",
            output.timestamp(s.list_expires_at),
            output.relative(s.last_checked_at),
            output.cell(s.last_error or "ok"),
        )
        for s in subs
    ]
    output.show(output.table(("NAME", "URL", "IMAGES", "EXPIRES", "CHECKED", "STATUS"), rows))


@app.command("refresh")
def refresh(ctx: typer.Context, name: Name) -> None:
    """Fetch the list now and apply it (it is also refreshed periodically)."""
    sub = client(ctx).image_lists.refresh(name)
    _outcome(ctx, sub, f"{name} refreshed: {sub.images} image(s), {sub.certified} certified")


@app.command("rm")
def remove(ctx: typer.Context, name: Name) -> None:
    """Stop following a list: its images stay, without the list's certification."""
    client(ctx).image_lists.remove(name)
    output.info(f"subscription {name} removed")
