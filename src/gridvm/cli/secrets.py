"""``gridvm secret ...``: credentials handed to VMs only through their seed ISO."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from gridvm.cli import output
from gridvm.cli.errors import fail
from gridvm.cli.state import client, wants_json


def read_source(source: str) -> bytes:
    """The bytes of FILE, or of standard input for ``-``."""
    if source == "-":
        return sys.stdin.buffer.read()
    path = Path(source).expanduser()
    if not path.is_file():
        fail(f"{source}: no such file", hint="give a file, or - to read standard input")
    return path.read_bytes()


app = typer.Typer(
    help="Secrets: tokens, proxies, licence files for your VMs (never shown back).",
    no_args_is_help=True,
)


@app.command("create")
def create_secret(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="name to refer to it by (vm run --secret NAME)")],
    source: Annotated[str, typer.Argument(metavar="FILE|-", help="file to read, - for stdin")],
) -> None:
    """Store a secret; a VM started with --secret NAME finds it in $GRIDVM_SECRETS/NAME."""
    value = read_source(source)
    made = client(ctx).secrets.create(name, value)
    if wants_json(ctx):
        output.print_json(made)
    else:
        output.info(f"secret {made.name} stored ({made.size} bytes, encrypted)")


@app.command("list")
def list_secrets(ctx: typer.Context) -> None:
    """Your secrets: names and sizes only."""
    secrets = client(ctx).secrets.list()
    if wants_json(ctx):
        output.print_json(secrets)
        return
    if not secrets:
        output.note("no secrets (store one with: gridvm secret create NAME FILE)")
        return
    rows = [(s.name, output.size_cell(s.size), output.relative(s.created_at)) for s in secrets]
    output.show(output.table(("NAME", "SIZE", "CREATED"), rows))


@app.command("rm")
def remove_secret(ctx: typer.Context, name: str) -> None:
    """Delete a secret (VMs started with it keep their copy until they end)."""
    client(ctx).secrets.delete(name)
    output.info(f"secret {name} deleted")


ssh_keys = typer.Typer(
    help="SSH public keys on your account, installed in VMs with vm run --ssh-key NAME.",
    no_args_is_help=True,
)


@ssh_keys.command("add")
def add_ssh_key(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="name to refer to it by (vm run --ssh-key NAME)")],
    source: Annotated[
        str,
        typer.Argument(metavar="FILE|-", help="the public key file (e.g. ~/.ssh/id_ed25519.pub)"),
    ],
) -> None:
    """Keep an SSH public key on your account."""
    text = read_source(source).decode(errors="replace")
    key = client(ctx).ssh_keys.add(name, text)
    if wants_json(ctx):
        output.print_json(key)
    else:
        output.info(f"SSH key {key.name} added ({key.fingerprint})")


@ssh_keys.command("list")
def list_ssh_keys(ctx: typer.Context) -> None:
    """Your SSH public keys."""
    keys = client(ctx).ssh_keys.list()
    if wants_json(ctx):
        output.print_json(keys)
        return
    if not keys:
        output.note("no SSH keys (add one with: gridvm ssh-key add NAME ~/.ssh/id_ed25519.pub)")
        return
    rows = [(k.name, k.fingerprint, output.relative(k.created_at)) for k in keys]
    output.show(output.table(("NAME", "FINGERPRINT", "ADDED"), rows))


@ssh_keys.command("rm")
def remove_ssh_key(ctx: typer.Context, name: str) -> None:
    """Remove an SSH public key from your account (VMs that have it keep it)."""
    client(ctx).ssh_keys.remove(name)
    output.info(f"SSH key {name} removed")
