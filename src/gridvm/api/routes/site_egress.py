"""The site's zone whitelists (admins): list, add and remove run-time entries."""

from __future__ import annotations

from fastapi import APIRouter

from gridvm.api.deps import Caller, Services
from gridvm.schemas.site_egress import SiteEgressOut, SiteEgressRuleIn, SiteEgressRuleOut

router = APIRouter(tags=["site egress"])


@router.get("/site/egress")
def list_rules(svc: Services, who: Caller) -> SiteEgressOut:
    """Every zone's whitelist entries (config and run-time ones) and the digest hosts report
    once they have applied them."""
    return svc.site_egress.listing(who)


@router.post("/site/egress", status_code=201)
def add_rule(body: SiteEgressRuleIn, svc: Services, who: Caller) -> SiteEgressRuleOut:
    """Add an entry to a zone's whitelist: every host applies it at its next sync."""
    return svc.site_egress.add(who, body)


@router.delete("/site/egress/{rule_id}")
def remove_rule(rule_id: str, svc: Services, who: Caller) -> SiteEgressRuleOut:
    return svc.site_egress.remove(who, rule_id)
