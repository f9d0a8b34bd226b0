"""``gridvm image build RECIPE.yaml``, ``gridvm image builds``, ``gridvm image build-log``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from gridvm.cli import output
from gridvm.cli.errors import fail
from gridvm.cli.images import image_fields
from gridvm.cli.state import client, wants_json
from gridvm.client.builds import load_recipe
from gridvm.schemas.builds import BuildOut, BuildState


def build_fields(b: BuildOut) -> None:
    output.show(
        output.fields(
            [
                ("id", b.id),
                ("image name", b.name),
                ("owner", b.owner),
                ("template", b.template),
                ("state", output.state_cell(b.state.value)),
                ("step", output.cell(b.step)),
                ("progress", f"{b.progress * 100:.0f}%"),
                ("class", output.cell(b.trust.value if b.trust else None)),
                ("why", output.cell(b.trust_reason)),
                ("image", output.cell(b.image_id)),
                ("error", output.cell(b.error)),
                ("created", output.timestamp(b.created_at)),
                ("finished", output.timestamp(b.finished_at)),
            ]
        )
    )


def build(
    ctx: typer.Context,
    recipe_file: Annotated[
        Path, typer.Argument(metavar="RECIPE", help="recipe YAML file", show_default=False)
    ],
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="return once the build is queued")
    ] = False,
) -> None:
    """Build an image from a recipe: a Debian template + packages, files, commands.

    Exits 1 if the build fails (the log: gridvm image build-log BUILD_ID).
    """
    recipe = load_recipe(recipe_file)  # bad YAML or keys: an error before anything is sent
    gv = client(ctx)
    queued = gv.builds.submit(recipe)
    if no_wait:
        if wants_json(ctx):
            output.print_json(queued)
        else:
            output.info(f"build {queued.id} of {queued.name} queued ({queued.trust_reason})")
        return
    if not wants_json(ctx):
        output.info(f"build {queued.id}: {queued.trust_reason}")
    err = output.console(stderr=True)
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=err,
        disable=not err.is_terminal,
    )
    with progress:
        task = progress.add_task(f"{queued.name}: queued", total=1.0)

        def show(b: BuildOut) -> None:
            progress.update(task, completed=b.progress, description=f"{b.name}: {b.step or ''}")

        done = gv.builds.wait(queued.id, on_update=show)
    if done.state != BuildState.succeeded:
        if wants_json(ctx):
            output.print_json(done)
        fail(
            f"build {done.id} failed: {done.error}",
            hint=f"see the log with: gridvm image build-log {done.id}",
        )
    if wants_json(ctx):
        output.print_json(done)
        return
    assert done.image_id is not None
    output.info(f"built image {done.name} ({done.image_id}), class {done.trust}")
    image_fields(gv.images.get(done.image_id))


def list_builds(ctx: typer.Context) -> None:
    """Your image builds (all of them for an admin)."""
    builds = client(ctx).builds.list()
    if wants_json(ctx):
        output.print_json(builds)
        return
    if not builds:
        output.note("no builds (start one with: gridvm image build RECIPE.yaml)")
        return
    rows = [
        (
            b.id,
            b.name,
            b.owner,
            output.state_cell(b.state.value),
            output.cell(b.step),
            output.cell(b.trust.value if b.trust else None),
            output.cell(b.image_id),
            output.relative(b.created_at),
        )
        for b in builds
    ]
    columns = ("ID", "NAME", "OWNER", "STATE", "STEP", "CLASS", "IMAGE", "CREATED")
    output.show(output.table(columns, rows))


def build_log(
    ctx: typer.Context,
    ref: Annotated[
        str,
        typer.Argument(metavar="REF", help="build id, or an image built from a recipe"),
    ],
) -> None:
    """The log of a build (kept with its image; failed builds keep theirs too)."""
    text = client(ctx).builds.log(ref)
    typer.echo(text, nl=False)


def show_build(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="REF", help="build id, or a built image")],
) -> None:
    """One build: state, step, the class decided and why, the image."""
    b = client(ctx).builds.get(ref)
    if wants_json(ctx):
        output.print_json(b)
    else:
        build_fields(b)


def register(images: typer.Typer) -> None:
    """Add the build commands to ``gridvm image``."""
    images.command("build")(build)
    images.command("builds")(list_builds)
    images.command("build-show")(show_build)
    images.command("build-log")(build_log)
