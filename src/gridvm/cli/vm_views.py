"""How VMs look on screen: a table for many, a listing for one."""

from __future__ import annotations

from gridvm.cli import output
from gridvm.client import state_counts
from gridvm.common.units import format_size
from gridvm.schemas.vms import VmOut

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
    rows = [
        (
            vm.id,
            vm.name,
            output.state_cell(vm.state),
            output.cell(vm.host),
            vm.image_name,
            str(vm.vcpus),
            memory_text(vm.memory_mb),
            vm.mode.value,
            _when(vm),
            output.cell(vm.pending_reason or vm.exit_reason),
        )
        for vm in vms
    ]
    columns = ("ID", "NAME", "STATE", "HOST", "IMAGE", "CPUS", "MEMORY", "MODE", "WHEN", "INFO")
    output.show(output.table(columns, rows, title=title))


def vm_fields(vm: VmOut) -> None:
    disk = "size of the image" if vm.disk_gb is None else f"{vm.disk_gb} GiB"
    output.show(
        output.fields(
            [
                ("id", vm.id),
                ("name", vm.name),
                ("state", output.state_cell(vm.state)),
                ("pending because", output.cell(vm.pending_reason)),
                ("exit reason", output.cell(vm.exit_reason)),
                ("owner", vm.owner),
                ("group", output.cell(vm.group)),
                ("deployment", f"{vm.deployment} (VM #{vm.index})"),
                ("image", f"{vm.image_name} ({vm.image})"),
                ("mode", vm.mode.value),
                ("vcpus", str(vm.vcpus)),
                ("memory", memory_text(vm.memory_mb)),
                ("disk", disk),
                ("host", output.cell(vm.host)),
                ("walltime", output.duration(vm.walltime_s)),
                ("created", output.timestamp(vm.created_at)),
                ("started", output.timestamp(vm.started_at)),
                ("expires", output.timestamp(vm.expires_at)),
                ("ended", output.timestamp(vm.ended_at)),
                ("attempt", str(vm.attempt)),
            ]
        )
    )


def counts_text(vms: list[VmOut]) -> str:
    return ", ".join(f"{n} {state.value}" for state, n in state_counts(vms).items()) or "no VMs"
