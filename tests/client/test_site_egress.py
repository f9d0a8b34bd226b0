"""The site's zone whitelists through the SDK (gv.site_egress), against a real server."""

from __future__ import annotations

import pytest

from gridvm.client import Client, ConflictError, InvalidRequest
from gridvm.schemas.hosts import Zone
from gridvm.schemas.site_egress import RuleSource


def test_add_list_remove(gv: Client) -> None:
    empty = gv.site_egress.list()
    rule = gv.site_egress.add("dmz", "192.0.2.0/24:443", note="campus web")
    assert (rule.zone, rule.entry, rule.source, rule.note) == (
        Zone.dmz,
        "192.0.2.0/24:443",
        RuleSource.admin,
        "campus web",
    )
    listing = gv.site_egress.list()
    assert [r.id for r in listing.rules] == [rule.id]
    assert listing.digest != empty.digest
    assert gv.site_egress.remove(rule.id or "").entry == "192.0.2.0/24:443"
    assert gv.site_egress.list().digest == empty.digest


def test_refusals_are_typed_errors(gv: Client) -> None:
    with pytest.raises(InvalidRequest, match="whole internet"):
        gv.site_egress.add(Zone.trusted, "0.0.0.0/0:443")
    gv.site_egress.add(Zone.trusted, "192.0.2.10:443")
    with pytest.raises(ConflictError, match="already"):
        gv.site_egress.add(Zone.trusted, "192.0.2.10:443")
