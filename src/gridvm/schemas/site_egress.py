"""The site's per-zone egress whitelists: entries from the server's config file and
entries admins add at run time (``gridvm egress``)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from gridvm.schemas.base import Wire
from gridvm.schemas.hosts import Zone


class RuleSource(StrEnum):
    config = "config"  # the server's --zone-egress / config file: changed by a restart
    admin = "admin"  # added at run time; removed the same way


class SiteEgressRuleIn(Wire):
    zone: Zone
    # ADDRESS[/PREFIX]:PORT[/udp], as for a VM's --allow-egress (addresses only).
    entry: str = Field(min_length=1, max_length=255)
    note: str | None = Field(default=None, max_length=255)


class SiteEgressRuleOut(Wire):
    id: str | None  # None for a config entry
    zone: Zone
    entry: str
    source: RuleSource
    note: str | None = None
    created_by: str | None = None
    created_at: datetime | None = None


class SiteEgressOut(Wire):
    rules: list[SiteEgressRuleOut]
    # Names the whole effective whitelist (config and admin entries of every zone); an
    # agent reports the digest it has applied (HostOut.site_egress_applied).
    digest: str
