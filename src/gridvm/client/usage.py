"""Usage over time: core-hours per group per hour or day."""

from __future__ import annotations

from pydantic import TypeAdapter

from gridvm.client.transport import Transport
from gridvm.schemas.usage import UsageHistory

_HISTORY = TypeAdapter(UsageHistory)


class Usage:
    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def history(self, days: int = 7) -> UsageHistory:
        """Core-hours per group per bucket over the last ``days`` days (hour buckets up to
        2 days, day buckets beyond): every group for admins, your own groups otherwise."""
        return self._t.get("/usage", _HISTORY, params={"days": days})
