"""Quotas on what runs: cores, memory and VMs per user and per group (and every group
above it in the tree). Usage comes from the VMs that hold resources, recomputed for each
pass, so counters cannot drift; a VM that would go over stays pending with the reason."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from gridvm.scheduler.snapshot import VmDemand

Subject = tuple[str, str]  # ("user", name) or ("group", path)


@dataclass(frozen=True)
class QuotaLimit:
    cores: int | None = None
    memory_mb: int | None = None
    vms: int | None = None


@dataclass
class Usage:
    cores: int = 0
    memory_mb: int = 0
    vms: int = 0


def group_and_parents(path: str) -> list[str]:
    """``a/b/c`` -> ``[a/b/c, a/b, a]``."""
    parts = path.split("/") if path else []
    return ["/".join(parts[:n]) for n in range(len(parts), 0, -1)]


def subjects_of(vm: VmDemand) -> list[Subject]:
    subjects: list[Subject] = [("user", vm.user)] if vm.user else []
    return subjects + [("group", g) for g in group_and_parents(vm.group)]


class QuotaBook:
    def __init__(self, limits: Mapping[Subject, QuotaLimit], usage: Mapping[Subject, Usage]):
        self.limits = dict(limits)
        self.usage = {k: Usage(u.cores, u.memory_mb, u.vms) for k, u in usage.items()}

    def refusal(self, vms: Iterable[VmDemand]) -> str | None:
        """Why starting all of ``vms`` together would break a quota, or None."""
        want: dict[Subject, Usage] = {}
        for vm in vms:
            for subject in subjects_of(vm):
                if subject in self.limits:
                    u = want.setdefault(subject, Usage())
                    u.cores += vm.vcpus
                    u.memory_mb += vm.memory_mb
                    u.vms += 1
        for subject, extra in want.items():
            limit = self.limits[subject]
            used = self.usage.get(subject, Usage())
            kind, name = subject
            for what, cap, have, add in (
                ("cores", limit.cores, used.cores, extra.cores),
                ("MiB of memory", limit.memory_mb, used.memory_mb, extra.memory_mb),
                ("VMs", limit.vms, used.vms, extra.vms),
            ):
                if cap is not None and have + add > cap:
                    return f"{kind} {name} is at its quota: {have} of {cap} {what} in use"
        return None

    def add(self, vms: Iterable[VmDemand]) -> None:
        for vm in vms:
            for subject in subjects_of(vm):
                u = self.usage.setdefault(subject, Usage())
                u.cores += vm.vcpus
                u.memory_mb += vm.memory_mb
                u.vms += 1
