"""Priority of a waiting VM, as in Slurm's multifactor plugin: weighted fair-share, age
and size factors (each in [0, 1]) with weights the site sets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from gridvm.scheduler.policy import Policy
from gridvm.scheduler.snapshot import VmDemand


def priorities(
    pending: Sequence[VmDemand],
    fairshare: Mapping[str, float],
    policy: Policy,
    now: float,
) -> dict[str, float]:
    """VM id -> priority. A group missing from ``fairshare`` gets factor 0.5, as if it
    had used exactly its share: neither ahead of nor behind the groups that have one."""
    largest = max((vm.vcpus for vm in pending), default=1)
    result = {}
    for vm in pending:
        age = min(max(0.0, now - vm.submitted_at) / policy.max_age_s, 1.0)
        size = vm.vcpus / largest
        fs = fairshare.get(vm.group, 0.5)
        result[vm.vm_id] = (
            policy.weight_fairshare * fs + policy.weight_age * age + policy.weight_size * size
        )
    return result
