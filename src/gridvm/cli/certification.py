"""``gridvm image certify|revoke|certifications``: security officers endorse images."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated

import typer

from gridvm.cli import output
from gridvm.cli.errors import fail
from gridvm.cli.state import client, wants_json
from gridvm.common.errors import InvalidInput
from gridvm.common.units import parse_duration
from gridvm.schemas.certification import CertificationOut
from gridvm.schemas.images import ImageOut

Ref = Annotated[str, typer.Argument(metavar="IMAGE", help="image id, or name", show_default=False)]
Reason = Annotated[str, typer.Option("--reason", "-r", help="why (kept in the image's history)")]


def parse_expiry(text: str, now: datetime | None = None) -> datetime:
    """An ISO date or date-time (UTC if no zone is given), or a duration from now (90d)."""
    now = now or datetime.now(UTC)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        try:
            return now + timedelta(seconds=parse_duration(text))
        except InvalidInput:
            fail(
                f"{text!r} is neither a date nor a duration",
                hint="give e.g. 2027-01-31, 2027-01-31T12:00Z or 90d",
            )
    if len(text.strip()) == 10:  # a bare date: the certification lasts through that day
        when = datetime.combine(date.fromisoformat(text.strip()), datetime.max.time())
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def trust_text(image: ImageOut) -> str:
    """The image's class as views show it: ``certified (expired 2026-..)`` when lapsed."""
    state, until = image.certification, image.certification_until
    day = f" {until:%Y-%m-%d}" if until else ""
    if image.trust.value == "certified" and until:
        return f"certified (until{day})"
    if state in ("expired", "revoked"):
        return f"certified ({state}{day})"
    return image.trust.value


def certification_table(certs: list[CertificationOut]) -> None:
    rows = [
        (
            c.state,
            c.source,
            c.certified_by,
            output.timestamp(c.certified_at),
            output.timestamp(c.expires_at) if c.expires_at else "-",
            output.cell(c.reason),
            f"{c.revoked_by} at {output.timestamp(c.revoked_at)}: {c.revoke_reason}"
            if c.revoked_by
            else "-",
        )
        for c in certs
    ]
    columns = ("STATE", "SOURCE", "BY", "CERTIFIED", "EXPIRES", "REASON", "REVOKED")
    output.show(output.table(columns, rows))


def certify(
    ctx: typer.Context,
    ref: Ref,
    reason: Reason,
    expires: Annotated[
        str | None,
        typer.Option(
            "--expires",
            help="until: an ISO date or date-time, or a duration such as 90d "
            "(default: the site's length)",
        ),
    ] = None,
) -> None:
    """Certify an image (security officers and admins): it may then run in the trusted zone.

    The image's inspection must have read it, found no credentials and no vulnerability
    at or above the site's block severity."""
    cert = client(ctx).certifications.certify(
        ref, reason, parse_expiry(expires) if expires else None
    )
    if wants_json(ctx):
        output.print_json(cert)
        return
    until = output.timestamp(cert.expires_at) if cert.expires_at else "no expiry"
    output.info(f"image {cert.image_name} ({cert.image}) is certified until {until}")


def revoke(ctx: typer.Context, ref: Ref, reason: Reason) -> None:
    """Revoke an image's certification (security officers and admins): it becomes a user
    image, which runs only in the DMZ zone."""
    certs = client(ctx).certifications.revoke(ref, reason)
    if wants_json(ctx):
        output.print_json(certs)
        return
    name = certs[0].image_name if certs else ref
    output.info(f"image {name}: {len(certs)} certification(s) revoked")


def certifications(ctx: typer.Context, ref: Ref) -> None:
    """An image's certification history: who certified it, why, until when, revocations."""
    certs = client(ctx).certifications.list(ref)
    if wants_json(ctx):
        output.print_json(certs)
    elif not certs:
        output.note("never certified")
    else:
        certification_table(certs)


def register(app: typer.Typer) -> None:
    """Add the certification commands to ``gridvm image``."""
    app.command("certify")(certify)
    app.command("revoke")(revoke)
    app.command("certifications")(certifications)
