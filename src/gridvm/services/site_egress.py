"""The site's per-zone egress whitelists as the hosts enforce them: the server's config
entries plus those admins add at run time, and which version each host has applied.

A change reaches the agents at their next sync (every host's sync is woken at once), and
each agent reports the digest of the whitelists it applied, so an operator can see that
a change is in force everywhere (``gridvm host list``) rather than assume it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from gridvm.common.config import SiteLimits
from gridvm.common.errors import Conflict, NotFound
from gridvm.common.names import new_id
from gridvm.network.whitelist import parse_entry
from gridvm.schemas.hosts import Zone
from gridvm.schemas.site_egress import (
    RuleSource,
    SiteEgressOut,
    SiteEgressRuleIn,
    SiteEgressRuleOut,
)
from gridvm.services.egress import policy_of
from gridvm.services.principal import Principal
from gridvm.store.db import Database
from gridvm.store.models import Host, SiteEgressRule

EDIT_CONFIG_HINT = (
    "it comes from the server's config (--zone-egress or the config file): "
    "change it there and restart the server"
)


@dataclass(frozen=True)
class SiteEgress:
    """The whitelist of each zone in force, config entries first, and its digest."""

    zones: Mapping[str, tuple[str, ...]]
    digest: str


def egress_digest(zones: Mapping[str, Sequence[str]]) -> str:
    """A short name of the whole set of whitelists (the same set gives the same digest)."""
    canonical = json.dumps(
        {zone: list(entries) for zone, entries in sorted(zones.items()) if entries},
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


class SiteEgressService:
    def __init__(
        self, db: Database, limits: SiteLimits, bump: Callable[..., None] = lambda *ids: None
    ) -> None:
        self.db = db
        self.limits = limits
        # Wakes these hosts' waiting syncs (HostSignals.bump).
        self.bump = bump

    def effective(self) -> SiteEgress:
        zones: dict[str, list[str]] = {
            zone.value: list(self.limits.zone_egress.get(zone.value, ())) for zone in Zone
        }
        with self.db.session() as s:
            added = s.scalars(select(SiteEgressRule).order_by(SiteEgressRule.created_at))
            for rule in added:
                if rule.entry not in zones[rule.zone]:
                    zones[rule.zone].append(rule.entry)
        frozen = {zone: tuple(entries) for zone, entries in zones.items()}
        return SiteEgress(zones=frozen, digest=egress_digest(frozen))

    def listing(self, who: Principal) -> SiteEgressOut:
        who.require_admin()
        rules = [
            SiteEgressRuleOut(id=None, zone=Zone(zone), entry=entry, source=RuleSource.config)
            for zone in Zone
            for entry in self.limits.zone_egress.get(zone.value, ())
        ]
        with self.db.session() as s:
            rules += [
                _rule_out(rule)
                for rule in s.scalars(select(SiteEgressRule).order_by(SiteEgressRule.created_at))
            ]
        return SiteEgressOut(rules=rules, digest=self.effective().digest)

    def add(self, who: Principal, body: SiteEgressRuleIn) -> SiteEgressRuleOut:
        """Add an entry to a zone's whitelist; in force on every host after its next sync.

        The site's width rule holds as for a VM's own entries (no 0.0.0.0/0 unless the
        server allows wide entries): a run-time change is easier to get wrong than the
        config file."""
        who.require_admin()
        entry = str(parse_entry(body.entry, policy_of(self.limits)))
        zone = body.zone.value
        if entry in self.limits.zone_egress.get(zone, ()):
            raise Conflict(
                f"{entry} is already in the {zone} zone's whitelist (from the server's config)"
            )
        with self.db.session() as s:
            if s.scalar(
                select(SiteEgressRule).where(
                    SiteEgressRule.zone == zone, SiteEgressRule.entry == entry
                )
            ):
                raise Conflict(
                    f"{entry} is already in the {zone} zone's whitelist",
                    hint="see it with: gridvm egress list",
                )
            rule = SiteEgressRule(
                id=new_id("egr"), zone=zone, entry=entry, note=body.note, created_by=who.name
            )
            s.add(rule)
            try:
                s.flush()
            except IntegrityError:  # the same entry added at the same moment
                raise Conflict(f"{entry} is already in the {zone} zone's whitelist") from None
            out = _rule_out(rule)
        self._wake_hosts()
        return out

    def remove(self, who: Principal, rule_id: str) -> SiteEgressRuleOut:
        who.require_admin()
        with self.db.session() as s:
            rule = s.get(SiteEgressRule, rule_id)
            if rule is None:
                raise NotFound(
                    f"no site egress rule {rule_id!r}",
                    hint="see the rules and their ids with: gridvm egress list "
                    "(a config entry has no id: " + EDIT_CONFIG_HINT + ")",
                )
            out = _rule_out(rule)
            s.delete(rule)
        self._wake_hosts()
        return out

    def _wake_hosts(self) -> None:
        with self.db.session() as s:
            host_ids = list(s.scalars(select(Host.id)))
        self.bump(*host_ids)


def _rule_out(rule: SiteEgressRule) -> SiteEgressRuleOut:
    return SiteEgressRuleOut(
        id=rule.id,
        zone=Zone(rule.zone),
        entry=rule.entry,
        source=RuleSource.admin,
        note=rule.note,
        created_by=rule.created_by,
        created_at=rule.created_at,
    )
