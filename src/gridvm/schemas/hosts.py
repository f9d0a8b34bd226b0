"""Hypervisor hosts as the API shows them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from gridvm.schemas.base import Wire


class HostState(StrEnum):
    enabled = "enabled"
    disabled = "disabled"  # draining: keeps its VMs, gets no new ones


class Zone(StrEnum):
    trusted = "trusted"  # site and certified images
    dmz = "dmz"  # any image, user images only here


ZONES_BY_TRUST: dict[str, frozenset[str]] = {
    "site": frozenset({"trusted", "dmz"}),
    "certified": frozenset({"trusted", "dmz"}),
    "user": frozenset({"dmz"}),
}


class HostLoad(Wire):
    """What the host's kernel says of its load, as an agent read it at its last sync."""

    load_1m: float = Field(ge=0)
    load_5m: float = Field(ge=0)
    load_15m: float = Field(ge=0)
    # MemAvailable: what new processes may use without swapping.
    memory_available_mb: int | None = Field(default=None, ge=0)


class HostOut(Wire):
    name: str
    address: str
    state: HostState
    online: bool
    arch: str
    accelerator: str
    cores: int
    memory_mb: int
    disk_bytes: int
    used_cores: int
    used_memory_mb: int
    vms: int
    cached_images: list[str]
    # As the agent last reported it (None: not reported).
    load: HostLoad | None = None
    labels: dict[str, str]
    zones: list[Zone] = Field(default_factory=lambda: [Zone.trusted, Zone.dmz])
    # Site networking: the digest of the site's zone whitelists its agent last applied
    # (None: user-mode networking, or not reported yet), and whether that is the current
    # one (``gridvm egress list`` shows the digest; a change is applied at the next sync).
    site_egress_applied: str | None = None
    site_egress_current: bool | None = None
    last_seen_at: datetime | None
    registered_at: datetime
