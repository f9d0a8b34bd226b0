"""Hosts: list, show, enable, disable (drain)."""

from __future__ import annotations

from fastapi import APIRouter

from gridvm.api.deps import Caller, Services
from gridvm.schemas.hosts import HostOut, HostState

router = APIRouter(tags=["hosts"])


@router.get("/hosts")
def list_hosts(svc: Services, who: Caller) -> list[HostOut]:
    return svc.hosts.list_hosts(who)


@router.get("/hosts/{name}")
def show_host(name: str, svc: Services, who: Caller) -> HostOut:
    return svc.hosts.get(who, name)


@router.post("/hosts/{name}/enable")
def enable_host(name: str, svc: Services, who: Caller) -> HostOut:
    return svc.hosts.set_state(who, name, HostState.enabled)


@router.post("/hosts/{name}/disable")
def disable_host(name: str, svc: Services, who: Caller) -> HostOut:
    """Drain: the host keeps its VMs and gets no new ones."""
    return svc.hosts.set_state(who, name, HostState.disabled)
