"""``gridvm image inspect`` and ``gridvm image vulns``: what an image holds, what is known bad."""

from __future__ import annotations

from typing import Annotated

import typer

from gridvm.cli import output
from gridvm.cli.state import client, wants_json
from gridvm.schemas.inspection import InspectionOut, Severity, VulnerabilitiesOut

Ref = Annotated[str, typer.Argument(metavar="REF", help="image id, or name", show_default=False)]


def _scan_line(i: InspectionOut) -> str:
    if i.state != "ok":
        return "not scanned (unreadable image)"
    if i.vulns is None:
        return "not scanned (the site has no vulnerability feed, or it was not read yet)"
    worst = f", worst {i.worst_severity.value}" if i.worst_severity else ""
    return f"{len(i.vulns)} known vulnerabilities{worst} (gridvm image vulns {i.image})"


def show_inspection(i: InspectionOut, packages: bool) -> None:
    os_text = i.os_name or " ".join(p for p in (i.os_id, i.os_version) if p) or None
    output.show(
        output.fields(
            [
                ("image", f"{i.image} ({i.image_id})"),
                ("state", i.state.value),
                ("error", output.cell(i.error)),
                ("os", output.cell(os_text)),
                ("packages", str(i.package_count)),
                ("credentials", f"{len(i.findings)} finding{'' if len(i.findings) == 1 else 's'}"),
                ("vulnerabilities", _scan_line(i)),
                ("inspected", output.timestamp(i.inspected_at)),
            ]
        )
    )
    if i.findings:
        rows = [(f.kind, f.path, f.detail) for f in i.findings]
        output.show(output.table(("KIND", "PATH", "DETAIL"), rows, title="Findings"))
    if packages and i.packages:
        packages_rows = [
            (p.name, p.version, p.arch, p.source, p.source_version, p.kind) for p in i.packages
        ]
        columns = ("NAME", "VERSION", "ARCH", "SOURCE", "SOURCE VERSION", "KIND")
        output.show(output.table(columns, packages_rows, title="Packages"))


def show_vulns(v: VulnerabilitiesOut) -> None:
    if not v.scanned:
        output.info(
            f"image {v.image} has not been scanned: the site has no vulnerability feed, "
            "or the image is unreadable"
        )
        return
    if not v.vulns:
        output.info(f"no known vulnerabilities in image {v.image} at or above that severity")
        return
    rows = [
        (x.id, x.package, x.installed, output.cell(x.fixed), x.severity.value, x.summary)
        for x in v.vulns
    ]
    columns = ("ID", "PACKAGE", "INSTALLED", "FIXED", "SEVERITY", "SUMMARY")
    output.show(output.table(columns, rows))


def register(app: typer.Typer) -> None:
    """Add ``inspect`` and ``vulns`` to the ``gridvm image`` command group."""

    @app.command("inspect")
    def inspect(
        ctx: typer.Context,
        ref: Ref,
        packages: Annotated[
            bool, typer.Option("--packages", help="list the installed packages too")
        ] = False,
        refresh: Annotated[
            bool,
            typer.Option("--refresh", help="read the image again (owner, officer or admin)"),
        ] = False,
    ) -> None:
        """What reading the image without booting it found: OS, packages, credentials."""
        gv = client(ctx)
        found = gv.inspections.refresh(ref) if refresh else gv.inspections.get(ref)
        if wants_json(ctx):
            output.print_json(found)
        else:
            show_inspection(found, packages)

    @app.command("vulns")
    def vulns(
        ctx: typer.Context,
        ref: Ref,
        min_severity: Annotated[
            Severity,
            typer.Option("--min-severity", help="only these and worse: low, medium, high, ..."),
        ] = Severity.unknown,
    ) -> None:
        """Known vulnerabilities of the image's packages (from the site's OSV feed)."""
        found = client(ctx).inspections.vulnerabilities(ref, min_severity)
        if wants_json(ctx):
            output.print_json(found)
        else:
            show_vulns(found)
