"""Hosts as operators see them: capacity, use, and draining."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from gridvm.common.config import SiteLimits
from gridvm.common.errors import NotFound
from gridvm.schemas.hosts import HostOut, HostState
from gridvm.schemas.vms import ACTIVE_STATES
from gridvm.services.presenters import host_out
from gridvm.services.principal import Principal
from gridvm.services.site_egress import SiteEgressService
from gridvm.store.db import Database
from gridvm.store.models import Host, Image, Vm, utcnow

ACTIVE = [s.value for s in ACTIVE_STATES]


def is_online(host: Host, now: datetime, offline_after_s: float) -> bool:
    return host.last_seen_at is not None and now - host.last_seen_at < timedelta(
        seconds=offline_after_s
    )


def host_usage(s: Session) -> dict[str, tuple[int, int, int]]:
    """Host id → (cores, memory MiB, VM count) held by VMs in an active state."""
    rows = s.execute(
        select(Vm.host_id, func.sum(Vm.vcpus), func.sum(Vm.memory_mb), func.count())
        .where(Vm.state.in_(ACTIVE), Vm.host_id.is_not(None))
        .group_by(Vm.host_id)
    ).all()
    return {str(h): (int(c or 0), int(m or 0), int(n)) for h, c, m, n in rows}


class HostService:
    def __init__(self, db: Database, offline_after_s: float, limits: SiteLimits) -> None:
        self.db = db
        self.offline_after_s = offline_after_s
        self.site_egress = SiteEgressService(db, limits)

    def list_hosts(self, who: Principal) -> list[HostOut]:
        digest = self.site_egress.effective().digest
        with self.db.session() as s:
            usage = host_usage(s)
            now = utcnow()
            hosts = s.scalars(select(Host).order_by(Host.name))
            return [self._out(h, usage, now, digest) for h in hosts]

    def get(self, who: Principal, name: str) -> HostOut:
        digest = self.site_egress.effective().digest
        with self.db.session() as s:
            return self._out(self._find(s, name), host_usage(s), utcnow(), digest)

    def set_state(self, who: Principal, name: str, state: HostState) -> HostOut:
        who.require_admin()
        digest = self.site_egress.effective().digest  # its own session: not inside the write
        with self.db.session() as s:
            host = self._find(s, name)
            host.state = state.value
            s.flush()
            return self._out(host, host_usage(s), utcnow(), digest)

    def image_names(self, who: Principal, digests: set[str]) -> dict[str, list[str]]:
        """Digest -> the names (owner/name:vN) of the images stored with it (admins), so a
        host's cache can be shown by name; a digest no image has any more is left out."""
        who.require_admin()
        names: dict[str, set[str]] = {}
        with self.db.session() as s:
            query = select(Image).where(
                or_(
                    Image.digest.in_(digests),
                    Image.kernel_digest.in_(digests),
                    Image.initrd_digest.in_(digests),
                )
            )
            for image in s.scalars(query):
                label = f"{image.owner.name}/{image.name}:v{image.version}"
                # Kernel-boot images bring their kernel and initrd to the cache too.
                for digest, part in (
                    (image.digest, ""),
                    (image.kernel_digest, " (kernel)"),
                    (image.initrd_digest, " (initrd)"),
                ):
                    if digest in digests:
                        names.setdefault(digest, set()).add(label + part)
        return {digest: sorted(found) for digest, found in names.items()}

    def _find(self, s: Session, name: str) -> Host:
        host = s.scalar(select(Host).where(Host.name == name))
        if host is None:
            raise NotFound(f"no host {name!r}", hint="see the hosts with: gridvm host list")
        return host

    def _out(
        self, host: Host, usage: dict[str, tuple[int, int, int]], now: datetime, egress_digest: str
    ) -> HostOut:
        cores, memory, count = usage.get(host.id, (0, 0, 0))
        return host_out(
            host,
            online=is_online(host, now, self.offline_after_s),
            used_cores=cores,
            used_memory_mb=memory,
            vms=count,
            egress_digest=egress_digest,
        )
