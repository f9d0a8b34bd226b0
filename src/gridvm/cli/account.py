"""``gridvm login``, ``logout`` and ``whoami``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from gridvm.cli import output
from gridvm.cli.errors import fail
from gridvm.cli.state import cli_state, client, wants_json
from gridvm.client import Client, Settings, config_path, save_settings
from gridvm.client.settings import forget_settings
from gridvm.schemas.identity import WhoAmI


def _read_token_file(path: Path) -> str:
    text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    token = text.strip()
    if not token:
        fail(f"{path} holds no token", hint="put the token from 'gridvm token create' in it")
    return token


def login(
    ctx: typer.Context,
    url: Annotated[
        str, typer.Argument(metavar="URL", help="URL of the gridvm server, e.g. http://host:8750")
    ],
    token: Annotated[
        str | None,
        typer.Option(
            "--token", help="API token (visible in your shell history: prefer --token-file)"
        ),
    ] = None,
    token_file: Annotated[
        Path | None,
        typer.Option("--token-file", help="file holding the API token ('-' reads stdin)"),
    ] = None,
) -> None:
    """Check a token against a server and save both for later commands."""
    if token is not None and token_file is not None:
        fail("give the token once", hint="use either --token or --token-file")
    if token_file is not None:
        token = _read_token_file(token_file)
    token = token or cli_state(ctx).token
    if not token:
        if not sys.stdin.isatty():
            fail("no token given", hint="pass --token-file FILE, or --token-file - to read stdin")
        token = typer.prompt("API token", hide_input=True)
    with Client(url, token) as gv:
        me = gv.whoami()
        settings = Settings(gv.url, token.strip())
    path = save_settings(settings)
    if wants_json(ctx):
        output.print_json({"url": settings.url, "config": str(path), **me.model_dump(mode="json")})
        return
    output.info(f"logged in to {settings.url} as {_describe(me)}")
    output.note(f"saved to {path}")


def logout(ctx: typer.Context) -> None:
    """Forget the saved server and token."""
    path = config_path()
    removed = forget_settings(path)
    if wants_json(ctx):
        output.print_json({"config": str(path), "removed": removed})
    elif removed:
        output.info(f"logged out: removed {path}")
    else:
        output.info(f"not logged in: there is no {path}")


def whoami(ctx: typer.Context) -> None:
    """Who the token belongs to, on which server."""
    gv = client(ctx)
    me = gv.whoami()
    if wants_json(ctx):
        output.print_json({"url": gv.url, **me.model_dump(mode="json")})
        return
    output.info(f"{_describe(me)} on {gv.url}")


def _describe(me: WhoAmI) -> str:
    groups = ", ".join(me.groups) or "no group"
    return f"{me.name} ({me.role.value}; groups: {groups})"


def register(app: typer.Typer) -> None:
    app.command()(login)
    app.command()(logout)
    app.command()(whoami)
