"""``gridvm egress ...``: the site's per-zone egress whitelists (admins)."""

from __future__ import annotations

from typing import Annotated

import typer

from gridvm.cli import output
from gridvm.cli.state import client, wants_json
from gridvm.schemas.hosts import Zone

app = typer.Typer(
    help="The site's zone whitelists: where every VM of a zone may connect to (admins).",
    no_args_is_help=True,
)


@app.command("list")
def list_rules(ctx: typer.Context) -> None:
    """Each zone's entries: from the server's config, and added at run time (with an id)."""
    listing = client(ctx).site_egress.list()
    if wants_json(ctx):
        output.print_json(listing)
        return
    if not listing.rules:
        output.note("no site whitelist entries: VMs reach only their own --allow-egress entries")
    else:
        rows = [
            (
                r.zone.value,
                r.entry,
                r.source.value,
                r.id or "-",
                output.cell(r.note or ""),
                r.created_by or "",
                output.timestamp(r.created_at),
            )
            for r in listing.rules
        ]
        columns = ("ZONE", "ENTRY", "FROM", "ID", "NOTE", "BY", "ADDED")
        output.show(output.table(columns, rows))
    output.info(f"digest {listing.digest} (gridvm host list: which hosts have applied it)")


@app.command("add")
def add_rule(
    ctx: typer.Context,
    zone: Annotated[Zone, typer.Argument(help="the zone whose VMs may connect")],
    entry: Annotated[
        str,
        typer.Argument(metavar="ENTRY", help="ADDRESS[/PREFIX]:PORT[/udp], e.g. 192.0.2.10:443"),
    ],
    note: Annotated[str | None, typer.Option("--note", help="why it is there")] = None,
) -> None:
    """Let every VM of ZONE connect to ENTRY; each host applies it at its next sync."""
    rule = client(ctx).site_egress.add(zone, entry, note)
    if wants_json(ctx):
        output.print_json(rule)
    else:
        output.info(f"added {rule.entry} to the {rule.zone.value} zone's whitelist ({rule.id})")


@app.command("remove")
def remove_rule(
    ctx: typer.Context,
    rule_id: Annotated[
        str, typer.Argument(metavar="ID", help="the rule's id (gridvm egress list)")
    ],
) -> None:
    """Remove a run-time entry; each host drops it at its next sync."""
    rule = client(ctx).site_egress.remove(rule_id)
    if wants_json(ctx):
        output.print_json(rule)
    else:
        output.info(f"removed {rule.entry} from the {rule.zone.value} zone's whitelist")
