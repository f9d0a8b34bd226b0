"""Literal pictures for scheduler tests."""

from __future__ import annotations

from typing import Any

from gridvm.scheduler import HostSnapshot, VmDemand


def vm(vm_id: str, cpus: int = 1, mem: int = 256, image: str = "sha256:a", **kw: Any) -> VmDemand:
    return VmDemand(vm_id=vm_id, vcpus=cpus, memory_mb=mem, image_digest=image, **kw)


def host(name: str, cores: int = 8, mem: int = 16384, **kw: Any) -> HostSnapshot:
    return HostSnapshot(name, cores=cores, memory_mb=mem, **kw)
