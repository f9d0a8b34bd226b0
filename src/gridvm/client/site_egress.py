"""The site's zone whitelists (admins)."""

from __future__ import annotations

from urllib.parse import quote

from pydantic import TypeAdapter

from gridvm.client.transport import Transport
from gridvm.schemas.hosts import Zone
from gridvm.schemas.site_egress import SiteEgressOut, SiteEgressRuleIn, SiteEgressRuleOut

_LISTING = TypeAdapter(SiteEgressOut)
_RULE = TypeAdapter(SiteEgressRuleOut)


class SiteEgress:
    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def list(self) -> SiteEgressOut:
        """Every zone's entries, from the config and added at run time, and their digest."""
        return self._t.get("/site/egress", _LISTING)

    def add(self, zone: Zone | str, entry: str, note: str | None = None) -> SiteEgressRuleOut:
        """Let every VM of ``zone`` reach ``entry`` (``ADDRESS[/PREFIX]:PORT[/udp]``); hosts
        apply it at their next sync."""
        body = SiteEgressRuleIn(zone=Zone(zone), entry=entry, note=note)
        return self._t.send("POST", "/site/egress", _RULE, json=body.model_dump(mode="json"))

    def remove(self, rule_id: str) -> SiteEgressRuleOut:
        return self._t.send("DELETE", f"/site/egress/{quote(rule_id, safe='')}", _RULE)
