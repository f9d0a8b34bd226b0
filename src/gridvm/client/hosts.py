"""Hypervisor hosts."""

from __future__ import annotations

from urllib.parse import quote

from pydantic import TypeAdapter

from gridvm.client.transport import Transport
from gridvm.schemas.hosts import HostOut

_HOST = TypeAdapter(HostOut)
_HOSTS = TypeAdapter(list[HostOut])


class Hosts:
    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def list(self) -> list[HostOut]:
        return self._t.get("/hosts", _HOSTS)

    def get(self, name: str) -> HostOut:
        return self._t.get(f"/hosts/{quote(name, safe='')}", _HOST)

    def enable(self, name: str) -> HostOut:
        """Let the host take new VMs again."""
        return self._t.send("POST", f"/hosts/{quote(name, safe='')}/enable", _HOST)

    def disable(self, name: str) -> HostOut:
        """Drain the host: it keeps its VMs and gets no new ones."""
        return self._t.send("POST", f"/hosts/{quote(name, safe='')}/disable", _HOST)
