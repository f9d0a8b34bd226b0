"""The root of the ``gridvm`` command: global options and the command tree.

``gridvm.main`` adds the daemon commands (server, agent, up, down) to ``app``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from gridvm.cli import (
    account,
    admin,
    build_cache,
    builds,
    certification,
    deployments,
    hosts,
    image_lists,
    images,
    scheduling,
    secrets,
    site_egress,
    usage,
    vms,
)
from gridvm.cli import volumes as volume_commands
from gridvm.cli.errors import GridvmGroup
from gridvm.cli.output import OutputFormat
from gridvm.cli.state import CliState

app = typer.Typer(
    name="gridvm",
    cls=GridvmGroup,
    no_args_is_help=True,
    # A traceback's local variables could hold a token: never print them.
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def root(
    ctx: typer.Context,
    url: Annotated[
        str | None,
        typer.Option(
            "--url", help="gridvm server URL (default: $GRIDVM_URL, else the one saved by login)"
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            help="API token (default: $GRIDVM_TOKEN, else the one saved by login)",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        OutputFormat,
        typer.Option("--output", "-o", help="table for people, json for scripts"),
    ] = OutputFormat.table,
) -> None:
    """gridvm: virtual machines for the scientists of a research computing site.

    Log in once with: gridvm login URL --token-file FILE
    """
    ctx.obj = CliState(url=url, token=token, output=output)


account.register(app)
builds.register(images.app)
certification.register(images.app)
app.add_typer(images.app, name="image")
app.add_typer(image_lists.app, name="image-list")
app.add_typer(vms.app, name="vm")
app.add_typer(deployments.app, name="deployment")
app.add_typer(hosts.app, name="host")
app.add_typer(site_egress.app, name="egress")
app.add_typer(secrets.app, name="secret")
app.add_typer(secrets.ssh_keys, name="ssh-key")
app.add_typer(admin.groups, name="group")
app.add_typer(admin.users, name="user")
app.add_typer(admin.tokens, name="token")
app.add_typer(build_cache.app, name="admin")
app.command("share")(scheduling.share)
app.command("usage")(usage.usage)
app.add_typer(scheduling.quotas, name="quota")
app.add_typer(scheduling.reservations, name="reservation")
app.add_typer(volume_commands.app, name="volume")
