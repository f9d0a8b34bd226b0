"""How VMs look on screen: a table for many, a listing for one."""

from __future__ import annotations

from rich.text import Text

from gridvm.cli import output
from gridvm.client import state_counts
from gridvm.common.units import format_size
from gridvm.schemas.vms import VmOut, VmRunOut

MIB = 1024**2


def memory_text(mb: int) -> str:
    return format_size(mb * MIB)


def _when(vm: VmOut) -> str:
    if vm.ended_at is not None:
        return f"ended {output.relative(vm.ended_at)}"
    if vm.expires_at is not None:
        return f"expires {output.relative(vm.expires_at)}"
    return f"created {output.relative(vm.created_at)}"


def vm_table(vms: list[VmOut], *, title: str | None = None) -> None:
    """One row per VM; EXIT and RESULTS columns only when a VM has a job's exit or results."""
    with_exit = any(vm.exit_status is not None for vm in vms)
    with_results = any(vm.results_bytes is not None for vm in vms)
    rows = []
    for vm in vms:
        row: list[Text | str] = [vm.id, vm.name, output.state_cell(vm.state)]
        if with_exit:
            row.append(exit_cell(vm.exit_status))
        row += [
            output.cell(vm.host),
            vm.image_name,
            str(vm.vcpus),
            memory_text(vm.memory_mb),
            vm.mode.value,
            _when(vm),
        ]
        if with_results:
            row.append(output.size_cell(vm.results_bytes))
        row.append(output.cell(vm.pending_reason or vm.exit_reason))
        rows.append(row)
    columns = ["ID", "NAME", "STATE"]
    columns += ["EXIT"] if with_exit else []
    columns += ["HOST", "IMAGE", "CPUS", "MEMORY", "MODE", "WHEN"]
    columns += ["RESULTS"] if with_results else []
    output.show(output.table([*columns, "INFO"], rows, title=title))


def exit_cell(status: int | None) -> Text:
    """The job's exit status: green 0, red otherwise, ``-`` when there is none (yet)."""
    if status is None:
        return output.cell(None)
    return Text(str(status), style="green" if status == 0 else "bold red")


def results_text(vm: VmOut) -> str:
    if vm.results_bytes is None:
        return "none"
    return f"{format_size(vm.results_bytes)} (download with: gridvm vm results {vm.id} -d DIR)"


def guest_text(vm: VmOut) -> str:
    """What the guest reported with its VM token: ready (and when), its address."""
    if vm.ready_at is None:
        return "not reported ready"
    address = f", address {vm.ip}" if vm.ip else ""
    return f"ready {output.relative(vm.ready_at)}{address}"


def progress_text(vm: VmOut) -> str | None:
    if vm.progress is None and not vm.progress_message:
        return None
    percent = "" if vm.progress is None else f"{vm.progress:g}%"
    return " ".join(part for part in (percent, vm.progress_message or "") if part)


def vm_fields(vm: VmOut) -> None:
    disk = "size of the image" if vm.disk_gb is None else f"{vm.disk_gb} GiB"
    published = ", ".join(f"{k}={v[:40]}" for k, v in sorted(vm.published.items()))
    output.show(
        output.fields(
            [
                ("id", vm.id),
                ("name", vm.name),
                ("state", output.state_cell(vm.state)),
                ("pending because", output.cell(vm.pending_reason)),
                ("priority", output.cell(None if vm.priority is None else f"{vm.priority:.0f}")),
                ("exit reason", output.cell(vm.exit_reason)),
                ("exit status", exit_cell(vm.exit_status)),
                ("results", results_text(vm)),
                ("guest", guest_text(vm)),
                ("progress", output.cell(progress_text(vm))),
                ("role", output.cell(vm.role)),
                ("published", output.cell(published or None)),
                ("owner", vm.owner),
                ("group", output.cell(vm.group)),
                ("deployment", f"{vm.deployment} (VM #{vm.index})"),
                ("image", _image_text(vm)),
                ("mode", vm.mode.value),
                ("zone", output.cell(vm.zone.value if vm.zone else None)),
                ("vcpus", str(vm.vcpus)),
                ("memory", memory_text(vm.memory_mb)),
                ("disk", disk),
                ("volumes", output.cell(", ".join(vm.volumes) or None)),
                ("site address", output.cell(vm.site_address)),
                ("egress", egress_text(vm)),
                ("host", output.cell(vm.host)),
                ("walltime", output.duration(vm.walltime_s)),
                ("created", output.timestamp(vm.created_at)),
                ("started", output.timestamp(vm.started_at)),
                ("expires", output.timestamp(vm.expires_at)),
                ("ended", output.timestamp(vm.ended_at)),
                ("attempt", str(vm.attempt)),
                ("runs", runs_text(vm)),
            ]
        )
    )


def egress_text(vm: VmOut) -> str:
    """The VM's effective egress rules: its own whitelist, then its zone's (the site's)."""
    own = [f"{e} (VM)" for e in vm.egress]
    zone = vm.zone.value if vm.zone else "zone"
    site = [f"{e} (site, {zone})" for e in vm.zone_egress]
    text = ", ".join(own + site) or "none (no outbound connections with site networking)"
    if vm.zone_egress_applied is False:
        text += "; its host has not applied the site's latest whitelist yet (next sync)"
    return text


def counts_text(vms: list[VmOut]) -> str:
    return ", ".join(f"{n} {state.value}" for state, n in state_counts(vms).items()) or "no VMs"


def _image_text(vm: VmOut) -> str:
    """``name:version (id)``: the version the VM got; ``(deleted)`` once the image is gone."""
    version = f":{vm.image_version}" if vm.image_version is not None else ""
    return f"{vm.image_name}{version} ({vm.image or 'deleted'})"


def runs_text(vm: VmOut) -> str:
    if vm.runs is None:
        return "-"
    return f"{vm.runs} (list them with: gridvm vm runs {vm.id})" if vm.runs else "0"


def runs_table(runs: list[VmRunOut]) -> None:
    """One row per run of a VM, oldest first; a run going on has no end yet."""
    rows: list[list[Text | str]] = [
        [
            str(run.number),
            output.cell(run.host),
            output.timestamp(run.started_at),
            output.timestamp(run.ended_at),
            output.duration(run.duration_s) + ("" if run.ended_at else " so far"),
            output.state_cell(run.end_state) if run.end_state else Text("running", style="green"),
        ]
        for run in runs
    ]
    output.show(output.table(["#", "HOST", "STARTED", "ENDED", "DURATION", "END STATE"], rows))
