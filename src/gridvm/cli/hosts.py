"""``gridvm host ...``: the hypervisor hosts, and draining them."""

from __future__ import annotations

from typing import Annotated

import typer

from gridvm.cli import output
from gridvm.cli.state import client, wants_json
from gridvm.common.units import format_size
from gridvm.schemas.hosts import HostLoad, HostOut

app = typer.Typer(
    help="Hypervisor hosts: list, show, enable, disable (drain).", no_args_is_help=True
)

HostName = Annotated[str, typer.Argument(metavar="NAME", help="host name", show_default=False)]
MIB = 1024**2


def _load(load: HostLoad | None) -> str:
    if load is None:
        return "not reported"
    text = f"{load.load_1m:.2f} {load.load_5m:.2f} {load.load_15m:.2f} (1, 5, 15 min)"
    if load.memory_available_mb is not None:
        text += f", {format_size(load.memory_available_mb * 1024 * 1024)} memory free"
    return text


def site_whitelist(h: HostOut) -> str:
    """Whether the host enforces the site's current zone whitelists (gridvm egress)."""
    if h.site_egress_applied is None:
        return "not reported (user-mode networking, or no sync yet)"
    if h.site_egress_current:
        return f"current ({h.site_egress_applied})"
    return f"behind: applied {h.site_egress_applied}, the site's has changed since (next sync)"


def _memory(used_mb: int, total_mb: int) -> str:
    return f"{format_size(used_mb * MIB)} / {format_size(total_mb * MIB)}"


def host_table(hosts: list[HostOut]) -> None:
    rows = [
        (
            h.name,
            output.state_cell(h.state.value),
            output.state_cell("online" if h.online else "offline"),
            f"{h.arch}/{h.accelerator}",
            f"{h.used_cores}/{h.cores}",
            _memory(h.used_memory_mb, h.memory_mb),
            str(h.vms),
            _whitelist_cell(h),
            output.relative(h.last_seen_at),
        )
        for h in hosts
    ]
    columns = ("NAME", "STATE", "LINK", "ARCH", "CORES", "MEMORY", "VMS", "WHITELIST", "SEEN")
    output.show(output.table(columns, rows))


def _whitelist_cell(h: HostOut) -> str:
    if h.site_egress_applied is None:
        return "-"
    return "current" if h.site_egress_current else "behind"


def host_fields(h: HostOut) -> None:
    labels = ", ".join(f"{k}={v}" for k, v in sorted(h.labels.items()))
    output.show(
        output.fields(
            [
                ("name", h.name),
                ("address", h.address),
                ("state", output.state_cell(h.state.value)),
                ("online", "yes" if h.online else "no"),
                ("arch", h.arch),
                ("accelerator", h.accelerator),
                ("cores", f"{h.used_cores} used of {h.cores}"),
                ("memory", f"{_memory(h.used_memory_mb, h.memory_mb)} used"),
                ("disk", format_size(h.disk_bytes)),
                ("VMs", str(h.vms)),
                ("load", _load(h.load)),
                ("cached images", output.cell(", ".join(h.cached_images))),
                ("labels", output.cell(labels)),
                ("zones", ", ".join(z.value for z in h.zones)),
                ("site whitelist", site_whitelist(h)),
                ("last seen", output.timestamp(h.last_seen_at)),
                ("registered", output.timestamp(h.registered_at)),
            ]
        )
    )


def _one(ctx: typer.Context, host: HostOut, message: str) -> None:
    if wants_json(ctx):
        output.print_json(host)
    else:
        output.info(message)


@app.command("list")
def list_hosts(ctx: typer.Context) -> None:
    """Every host with its load."""
    hosts = client(ctx).hosts.list()
    if wants_json(ctx):
        output.print_json(hosts)
    elif not hosts:
        output.note("no hosts: start an agent on a host (gridvm agent, or gridvm up)")
    else:
        host_table(hosts)


@app.command("show")
def show_host(ctx: typer.Context, name: HostName) -> None:
    """One host in full."""
    host = client(ctx).hosts.get(name)
    if wants_json(ctx):
        output.print_json(host)
    else:
        host_fields(host)


@app.command("enable")
def enable(ctx: typer.Context, name: HostName) -> None:
    """Let a host take new VMs again."""
    host = client(ctx).hosts.enable(name)
    _one(ctx, host, f"host {host.name} is enabled: it takes new VMs")


@app.command("disable")
def disable(ctx: typer.Context, name: HostName) -> None:
    """Drain a host: it keeps its VMs and gets no new ones."""
    host = client(ctx).hosts.disable(name)
    _one(ctx, host, f"host {host.name} is disabled: it keeps its {host.vms} VMs, gets no new ones")
