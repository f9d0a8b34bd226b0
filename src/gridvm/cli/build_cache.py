"""``gridvm admin build-cache show|clear``: the package cache recipe builds share."""

from __future__ import annotations

import typer

from gridvm.cli import output
from gridvm.cli.state import client, wants_json
from gridvm.common.units import format_size
from gridvm.schemas.builds import BuildCacheOut

app = typer.Typer(help="Site administration (admins only).", no_args_is_help=True)
build_cache = typer.Typer(
    help="The package cache recipe builds share (<data>/build-cache on the server).",
    no_args_is_help=True,
)
app.add_typer(build_cache, name="build-cache")


def _show(cache: BuildCacheOut) -> None:
    if not cache.enabled:
        output.info("the package cache is off (gridvm server --build-cache-max-mb 0)")
        return
    output.show(
        output.fields(
            [
                ("directory", output.cell(cache.directory)),
                ("packages", str(cache.files)),
                ("size", output.size_cell(cache.bytes)),
                ("limit", output.size_cell(cache.max_bytes)),
                ("keys", str(len(cache.keys))),
            ]
        )
    )
    if cache.keys:
        rows = [
            (
                k.key[:16],
                str(k.files),
                output.size_cell(k.bytes),
                output.relative(k.last_used),
            )
            for k in cache.keys
        ]
        output.show(output.table(("KEY", "PACKAGES", "SIZE", "LAST USED"), rows))


@build_cache.command("show")
def show(ctx: typer.Context) -> None:
    """What the cache holds: packages and size, per key (mirror, suite, sources)."""
    cache = client(ctx).builds.cache()
    if wants_json(ctx):
        output.print_json(cache)
    else:
        _show(cache)


@build_cache.command("clear")
def clear(ctx: typer.Context) -> None:
    """Empty the cache: the next builds download their packages again."""
    removed = client(ctx).builds.clear_cache()
    if wants_json(ctx):
        output.print_json(removed)
    else:
        output.info(
            f"removed {removed.files} packages ({format_size(removed.bytes)}) from the build cache"
        )
