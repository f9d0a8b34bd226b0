"""Fair share, quotas, reservations and leases as the API shows them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from gridvm.schemas.base import Wire


class QuotaSubject(StrEnum):
    user = "user"
    group = "group"


class QuotaSet(Wire):
    """Most that may run at once; a field left out (null) sets no limit on it."""

    cores: int | None = Field(default=None, ge=0, le=2**31 - 1)
    memory_mb: int | None = Field(default=None, ge=0, le=2**31 - 1)
    vms: int | None = Field(default=None, ge=0, le=2**31 - 1)
    image_bytes: int | None = Field(default=None, ge=0, le=2**62)
    images: int | None = Field(default=None, ge=0, le=2**31 - 1)


class QuotaOut(Wire):
    kind: QuotaSubject
    name: str
    cores: int | None
    memory_mb: int | None
    vms: int | None
    used_cores: int
    used_memory_mb: int
    used_vms: int
    image_bytes: int | None = None
    images: int | None = None
    used_image_bytes: int = 0
    used_images: int = 0
    # The part of used_image_bytes that volumes take (at their full size).
    used_volume_bytes: int = 0


class ShareRow(Wire):
    """One group of the fair-share tree."""

    group: str  # its path: physics/cms
    shares: float
    normalised_share: float  # its fraction of the whole cluster's shares
    usage_core_hours: float  # decayed
    usage_fraction: float  # of all decayed usage
    factor: float  # fair-share factor in [0, 1]: higher is served first
    running_vms: int
    running_cores: int
    pending_vms: int


class ShareTree(Wire):
    algorithm: str
    half_life_s: float
    groups: list[ShareRow]


class ReservationCreate(Wire):
    group: str
    cores: int = Field(ge=1, le=2**31 - 1)
    starts_at: datetime
    ends_at: datetime
    hosts: list[str] = Field(default_factory=list)


class ReservationOut(Wire):
    id: str
    group: str
    cores: int
    starts_at: datetime
    ends_at: datetime
    hosts: list[str]
    created_by: str
    active: bool


class LeaseExtend(Wire):
    by_s: int = Field(ge=1, le=2**31 - 1)


class Affinity(StrEnum):
    none = "none"
    same_host = "same-host"
    different_hosts = "different-hosts"
