"""``gridvm share``, ``gridvm quota ...`` and ``gridvm reservation ...``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from gridvm.cli import output
from gridvm.cli.errors import fail
from gridvm.cli.state import client, wants_json
from gridvm.common.errors import InvalidInput
from gridvm.common.units import format_duration, format_size, parse_duration, parse_size
from gridvm.schemas.scheduling import QuotaOut, QuotaSubject

quotas = typer.Typer(help="Quotas: what a user or group may run at once.", no_args_is_help=True)
reservations = typer.Typer(
    help="Advance reservations: cores kept for a group over a time window.", no_args_is_help=True
)
MIB = 1024**2

UserOpt = Annotated[str | None, typer.Option("--user", "-u", help="a user")]
GroupOpt = Annotated[
    str | None, typer.Option("--group", "-g", help="a group (with its sub-groups)")
]


def share(ctx: typer.Context) -> None:
    """The fair-share tree: each group's shares, decayed usage, factor, running and pending.

    A higher factor is served first: a group that used less than its share lately
    comes before one that used more (usage decays by half every half-life).
    """
    tree = client(ctx).share.tree()
    if wants_json(ctx):
        output.print_json(tree)
        return
    rows = [
        (
            "  " * g.group.count("/") + g.group.rsplit("/", 1)[-1],
            f"{g.shares:g}",
            f"{g.normalised_share:.1%}",
            f"{g.usage_core_hours:.1f}",
            f"{g.usage_fraction:.1%}",
            f"{g.factor:.3f}",
            f"{g.running_vms} ({g.running_cores} cores)",
            str(g.pending_vms),
        )
        for g in tree.groups
    ]
    title = f"fair share ({tree.algorithm}, half-life {format_duration(int(tree.half_life_s))})"
    columns = ("GROUP", "SHARES", "SHARE", "CORE-HOURS", "USAGE", "FACTOR", "RUNNING", "PENDING")
    output.show(output.table(columns, rows, title=title))


def _subject(user: str | None, group: str | None) -> tuple[QuotaSubject, str]:
    if (user is None) == (group is None):
        fail("name one subject: --user NAME or --group NAME")
    if user is not None:
        return QuotaSubject.user, user
    assert group is not None
    return QuotaSubject.group, group


def _limit(value: int | None, unit: str) -> str:
    return "no limit" if value is None else f"{value}{unit}"


def _quota_rows(found: list[QuotaOut]) -> None:
    rows = [
        (
            f"{q.kind.value} {q.name}",
            f"{q.used_cores} / {_limit(q.cores, '')}",
            f"{format_size(q.used_memory_mb * MIB)} / "
            + ("no limit" if q.memory_mb is None else format_size(q.memory_mb * MIB)),
            f"{q.used_vms} / {_limit(q.vms, '')}",
            f"{format_size(q.used_image_bytes)} / "
            + ("no limit" if q.image_bytes is None else format_size(q.image_bytes))
            + (f" ({format_size(q.used_volume_bytes)} volumes)" if q.used_volume_bytes else ""),
            f"{q.used_images} / {_limit(q.images, '')}",
        )
        for q in found
    ]
    columns = ("WHO", "CORES", "MEMORY", "VMS", "IMAGE STORAGE", "IMAGES")
    output.show(output.table(columns, rows))


@quotas.command("set")
def set_quota(
    ctx: typer.Context,
    user: UserOpt = None,
    group: GroupOpt = None,
    cores: Annotated[int | None, typer.Option("--cores", help="running cores")] = None,
    memory: Annotated[str | None, typer.Option("--memory", help="running memory, e.g. 8G")] = None,
    vms: Annotated[int | None, typer.Option("--vms", help="running VMs")] = None,
    image_storage: Annotated[
        str | None, typer.Option("--image-storage", help="stored images, e.g. 100G")
    ] = None,
    images: Annotated[int | None, typer.Option("--images", help="number of images")] = None,
) -> None:
    """Set a quota (admins); limits left out are unlimited. VMs over it stay pending; an
    image upload (or vm save) over it is refused and leaves nothing."""
    kind, name = _subject(user, group)
    memory_mb = None
    if memory is not None:
        size = parse_size(memory, default_unit="M")
        if size % MIB:
            raise InvalidInput(f"--memory {memory}: give whole MiB", hint="e.g. 512M or 8G")
        memory_mb = size // MIB
    image_bytes = None if image_storage is None else parse_size(image_storage)
    quota = client(ctx).quotas.set(
        kind,
        name,
        cores=cores,
        memory_mb=memory_mb,
        vms=vms,
        image_bytes=image_bytes,
        images=images,
    )
    if wants_json(ctx):
        output.print_json(quota)
    else:
        _quota_rows([quota])


@quotas.command("show")
def show_quotas(ctx: typer.Context) -> None:
    """Quotas with what is in use: all for admins, yours and your groups' otherwise."""
    found = client(ctx).quotas.list()
    if wants_json(ctx):
        output.print_json(found)
    elif not found:
        output.info("no quotas")
    else:
        _quota_rows(found)


@quotas.command("rm")
def remove_quota(ctx: typer.Context, user: UserOpt = None, group: GroupOpt = None) -> None:
    """Remove a quota (admins)."""
    kind, name = _subject(user, group)
    client(ctx).quotas.remove(kind, name)
    output.info(f"removed the quota of {kind.value} {name}")


def _when(text: str, what: str) -> datetime:
    """An ISO time (UTC if no zone is given), or 'now'."""
    if text == "now":
        return datetime.now(UTC)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"{what} {text!r} is not a time", hint="write it like 2026-12-01T08:00 (UTC) or now"
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


@reservations.command("create")
def create_reservation(
    ctx: typer.Context,
    group: Annotated[str, typer.Option("--group", "-g", help="the group the cores are for")],
    cores: Annotated[int, typer.Option("--cores", help="how many cores")],
    start: Annotated[
        str, typer.Option("--start", help="ISO time (UTC unless a zone is given) or now")
    ] = "now",
    end: Annotated[str | None, typer.Option("--end", help="ISO time")] = None,
    duration: Annotated[
        str | None, typer.Option("--duration", help="instead of --end, e.g. 4h")
    ] = None,
    host: Annotated[
        list[str] | None, typer.Option("--host", help="on this host (repeatable; default any)")
    ] = None,
) -> None:
    """Keep cores for a group over a time window (admins)."""
    starts_at = _when(start, "--start")
    if (end is None) == (duration is None):
        fail("give the end of the window: --end TIME or --duration 4h")
    if end is not None:
        ends_at = _when(end, "--end")
    else:
        assert duration is not None
        ends_at = datetime.fromtimestamp(starts_at.timestamp() + parse_duration(duration), UTC)
    made = client(ctx).reservations.create(group, cores, starts_at, ends_at, host or [])
    if wants_json(ctx):
        output.print_json(made)
    else:
        output.info(
            f"reservation {made.id}: {made.cores} cores for {made.group}"
            f" from {output.timestamp(made.starts_at)} to {output.timestamp(made.ends_at)}"
        )


@reservations.command("list")
def list_reservations(ctx: typer.Context) -> None:
    """Reservations not yet over (admins see all, users their groups')."""
    found = client(ctx).reservations.list()
    if wants_json(ctx):
        output.print_json(found)
        return
    rows = [
        (
            r.id,
            r.group,
            str(r.cores),
            output.timestamp(r.starts_at),
            output.timestamp(r.ends_at),
            output.cell(", ".join(r.hosts) or "any"),
            "active" if r.active else "upcoming",
        )
        for r in found
    ]
    columns = ("ID", "GROUP", "CORES", "FROM", "TO", "HOSTS", "NOW")
    output.show(output.table(columns, rows))


@reservations.command("rm")
def remove_reservation(
    ctx: typer.Context,
    reservation_id: Annotated[str, typer.Argument(metavar="ID", help="reservation id")],
) -> None:
    """Cancel a reservation (admins)."""
    client(ctx).reservations.remove(reservation_id)
    output.info(f"removed reservation {reservation_id}")
