"""``gridvm usage``: core-hours per group per hour or day."""

from __future__ import annotations

from typing import Annotated

import typer

from gridvm.cli import output
from gridvm.cli.state import client, wants_json
from gridvm.schemas.usage import Bucket


def usage(
    ctx: typer.Context,
    days: Annotated[int, typer.Option("--days", "-d", help="how many days back (1-366)")] = 7,
) -> None:
    """Core-hours each group's VMs used per hour (up to 2 days) or per day.

    Admins see every group; other users see their own groups. Counted from the VMs'
    runs: a VM stopped and started again, or redeployed, counts every run.
    """
    history = client(ctx).usage.history(days)
    if wants_json(ctx):
        output.print_json(history)
        return
    when = "%Y-%m-%d %H:00" if history.bucket is Bucket.hour else "%Y-%m-%d"
    groups = [s.group for s in history.series]
    rows = [
        (
            start.strftime(when),
            *(f"{s.core_hours[i]:.3f}" for s in history.series),
            f"{sum(s.core_hours[i] for s in history.series):.3f}",
        )
        for i, start in enumerate(history.starts)
    ]
    rows.append(
        (
            "total",
            *(f"{s.total:.3f}" for s in history.series),
            f"{sum(s.total for s in history.series):.3f}",
        )
    )
    title = f"core-hours per {history.bucket.value}, last {history.days} days"
    output.show(
        output.table((f"{history.bucket.value.upper()} (UTC)", *groups, "TOTAL"), rows, title=title)
    )
