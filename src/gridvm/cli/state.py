"""What the root options decide for every command: server, token, output format."""

from __future__ import annotations

from dataclasses import dataclass, field

import typer

from gridvm.cli.output import OutputFormat
from gridvm.client import Client, load_settings


@dataclass
class CliState:
    url: str | None = None
    token: str | None = None
    output: OutputFormat = OutputFormat.table
    _client: Client | None = field(default=None, repr=False)


def cli_state(ctx: typer.Context) -> CliState:
    state = ctx.find_root().obj
    if not isinstance(state, CliState):
        state = CliState()
        ctx.find_root().obj = state
    return state


def wants_json(ctx: typer.Context) -> bool:
    return cli_state(ctx).output == OutputFormat.json


def client(ctx: typer.Context) -> Client:
    """The SDK client for this invocation (made on first use, closed when the command ends)."""
    state = cli_state(ctx)
    if state._client is None:
        settings = load_settings(state.url, state.token)
        state._client = ctx.find_root().with_resource(Client(settings.url, settings.token))
    return state._client
