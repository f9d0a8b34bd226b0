"""``gridvm group|user|token ...``: who may use the site, and their API tokens."""

from __future__ import annotations

from typing import Annotated

import typer

from gridvm.cli import output
from gridvm.cli.state import client, wants_json
from gridvm.schemas.identity import GroupOut, Role

groups = typer.Typer(help="Groups (VOs) of users.", no_args_is_help=True)
users = typer.Typer(help="Users (admins only).", no_args_is_help=True)
tokens = typer.Typer(help="API tokens.", no_args_is_help=True)


# --- groups ------------------------------------------------------------------------
GroupName = Annotated[str, typer.Argument(metavar="NAME", help="group name", show_default=False)]
Shares = Annotated[
    float, typer.Option("--shares", help="fair-share shares, relative to its sibling groups")
]


@groups.command("create")
def create_group(
    ctx: typer.Context,
    name: GroupName,
    parent: Annotated[
        str | None,
        typer.Option("--parent", help="make it a sub-group of this group (fair-share tree)"),
    ] = None,
    shares: Shares = 1.0,
) -> None:
    """Create a group (a VO), or a sub-group with --parent."""
    group = client(ctx).groups.create(name, parent=parent, shares=shares)
    if wants_json(ctx):
        output.print_json(group)
    else:
        output.info(f"created group {group.path} ({group.shares:g} shares)")


@groups.command("set-shares")
def set_shares(
    ctx: typer.Context,
    name: GroupName,
    shares: Annotated[float, typer.Argument(metavar="SHARES", help="fair-share shares")],
) -> None:
    """Set a group's fair-share shares (see them with: gridvm share)."""
    group = client(ctx).groups.set_shares(name, shares)
    if wants_json(ctx):
        output.print_json(group)
    else:
        output.info(f"group {group.path} now has {group.shares:g} shares")


UserName = Annotated[str, typer.Argument(metavar="USER", help="user name", show_default=False)]


def _group_changed(ctx: typer.Context, group: GroupOut, message: str) -> None:
    if wants_json(ctx):
        output.print_json(group)
    else:
        output.info(message)


@groups.command("add-member")
def add_member(
    ctx: typer.Context,
    name: GroupName,
    user: UserName,
    manager: Annotated[
        bool, typer.Option("--manager", help="as a manager (publishes images to the group)")
    ] = False,
) -> None:
    """Add a user to a group (admins; a group's managers may add plain members)."""
    group = client(ctx).groups.set_member(name, user, manager=manager)
    role = "manager" if manager else "member"
    _group_changed(ctx, group, f"{user} is a {role} of group {group.path or group.name}")


@groups.command("set-manager")
def set_manager(
    ctx: typer.Context,
    name: GroupName,
    user: UserName,
    no: Annotated[bool, typer.Option("--no", help="make them a plain member again")] = False,
) -> None:
    """Make a member a manager of the group, who publishes images to it (admins)."""
    group = client(ctx).groups.set_member(name, user, manager=not no)
    role = "a plain member" if no else "a manager"
    _group_changed(ctx, group, f"{user} is {role} of group {group.path or group.name}")


@groups.command("remove-member")
def remove_member(ctx: typer.Context, name: GroupName, user: UserName) -> None:
    """Take a user out of a group (not out of their primary group)."""
    group = client(ctx).groups.remove_member(name, user)
    _group_changed(ctx, group, f"{user} is no longer a member of group {group.path or group.name}")


@groups.command("list")
def list_groups(ctx: typer.Context) -> None:
    """Groups and their members (an admin sees all, others their own)."""
    found = client(ctx).groups.list()
    if wants_json(ctx):
        output.print_json(found)
        return
    rows = [
        (
            g.path or g.name,
            f"{g.shares:g}",
            output.cell(", ".join(g.members)),
            output.cell(", ".join(g.managers)),
            output.relative(g.created_at),
        )
        for g in found
    ]
    output.show(output.table(("GROUP", "SHARES", "MEMBERS", "MANAGERS", "CREATED"), rows))


# --- users ---------------------------------------------------------------------------
@users.command("create")
def create_user(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="user name")],
    group: Annotated[str, typer.Option("--group", "-g", help="the user's group")],
    role: Annotated[
        Role,
        typer.Option(
            "--role",
            help="user, officer (a security officer: certifies images), admin, or agent"
            " (the credential of a host agent)",
        ),
    ] = Role.user,
) -> None:
    """Create a user in a group (then: gridvm token create --user NAME)."""
    user = client(ctx).users.create(name, group, role)
    if wants_json(ctx):
        output.print_json(user)
    else:
        output.info(f"created {user.role.value} {user.name} in group {', '.join(user.groups)}")
        output.note(f"give them a token with: gridvm token create --user {user.name}")


@users.command("list")
def list_users(ctx: typer.Context) -> None:
    """Every user, with role and groups."""
    found = client(ctx).users.list()
    if wants_json(ctx):
        output.print_json(found)
        return
    rows = [
        (u.name, u.role.value, output.cell(", ".join(u.groups)), output.relative(u.created_at))
        for u in found
    ]
    output.show(output.table(("NAME", "ROLE", "GROUPS", "CREATED"), rows))


# --- tokens ----------------------------------------------------------------------------
@tokens.command("create")
def create_token(
    ctx: typer.Context,
    user: Annotated[
        str | None, typer.Option("--user", "-u", help="for this user (admins; default: you)")
    ] = None,
    description: Annotated[
        str, typer.Option("--description", "-d", help="what the token is for")
    ] = "",
) -> None:
    """Make an API token. It is printed once, on stdout: store it now."""
    created = client(ctx).tokens.create(user=user, description=description)
    if wants_json(ctx):
        output.print_json(created)
    else:
        typer.echo(created.token)
    output.warn(
        f"token {created.id} for {created.user} is shown only now: store it (e.g. in a 0600 file)"
        " and log in with: gridvm login URL --token-file FILE"
    )


@tokens.command("list")
def list_tokens(ctx: typer.Context) -> None:
    """Your tokens (an admin sees all), without their secrets."""
    found = client(ctx).tokens.list()
    if wants_json(ctx):
        output.print_json(found)
        return
    rows = [
        (
            t.id,
            t.user,
            output.cell(t.description),
            output.relative(t.created_at),
            output.relative(t.last_used_at) if t.last_used_at else "never",
        )
        for t in found
    ]
    output.show(output.table(("ID", "USER", "DESCRIPTION", "CREATED", "USED"), rows))


@tokens.command("revoke")
def revoke_token(
    ctx: typer.Context,
    token_id: Annotated[str, typer.Argument(metavar="ID", help="token id (see gridvm token list)")],
) -> None:
    """Revoke a token: it stops working at once."""
    client(ctx).tokens.revoke(token_id)
    if wants_json(ctx):
        output.print_json({"id": token_id, "revoked": True})
    else:
        output.info(f"revoked token {token_id}")
