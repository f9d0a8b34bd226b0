"""The deploy-time zone policy, case by case (a pure function)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gridvm.schemas.hosts import Zone
from gridvm.schemas.images import TrustClass
from gridvm.services.zone_policy import (
    CertState,
    ZoneInputs,
    at_or_above,
    decide_zone,
    severity_rank,
)

SITE, CERT, USER = TrustClass.site, TrustClass.certified, TrustClass.user
NONE, VALID, EXPIRED, REVOKED = (
    CertState.none,
    CertState.valid,
    CertState.expired,
    CertState.revoked,
)
T, D = Zone.trusted, Zone.dmz
KEY = ("ssh private key at /root/.ssh/id_rsa",)

# (class, certification, findings, worst severity, requested, block) -> zone, or a
# fragment of the refusal.
CASES: list[tuple[TrustClass, CertState, tuple[str, ...], str | None, Zone | None, str, object]] = [
    # Default zones follow the class.
    (SITE, NONE, (), None, None, "high", T),
    (CERT, VALID, (), None, None, "high", T),
    (USER, NONE, (), None, None, "high", D),
    (USER, EXPIRED, (), None, None, "high", D),  # lapsed: a user image again
    # Asked-for zones.
    (SITE, NONE, (), None, D, "high", D),
    (CERT, VALID, (), "medium", T, "high", T),
    (CERT, VALID, (), None, D, "high", D),
    (USER, NONE, (), "low", D, "high", D),
    (USER, NONE, (), None, T, "high", "a user image runs only in the DMZ"),
    (USER, EXPIRED, (), None, T, "high", "certification was expired on 2026-03-01"),
    (USER, REVOKED, (), None, T, "high", "certification was revoked on 2026-03-01"),
    # Credentials: never, in any zone and class.
    (SITE, NONE, KEY, None, None, "high", "carries credentials (ssh private key"),
    (USER, NONE, KEY, None, D, "high", "carries credentials"),
    # Vulnerabilities at or above the block severity: never.
    (CERT, VALID, (), "high", T, "high", "has a high vulnerability"),
    (USER, NONE, (), "critical", D, "high", "has a critical vulnerability"),
    (USER, NONE, (), "medium", D, "medium", "the site blocks medium and above"),
    (USER, NONE, (), "unknown", D, "low", D),  # unknown ranks below low
    (USER, NONE, (), "critical", D, "critical", "critical vulnerability"),
]


@pytest.mark.parametrize(("cls", "cert", "findings", "worst", "zone", "block", "want"), CASES)
def test_decide_zone(
    cls: TrustClass,
    cert: CertState,
    findings: tuple[str, ...],
    worst: str | None,
    zone: Zone | None,
    block: str,
    want: object,
) -> None:
    lapsed = datetime(2026, 3, 1, tzinfo=UTC) if cert in (EXPIRED, REVOKED) else None
    decision = decide_zone(ZoneInputs(cls, cert, findings, worst, zone, block, lapsed))
    if isinstance(want, Zone):
        assert (decision.zone, decision.refusal) == (want, None)
    else:
        assert decision.zone is None and decision.refusal is not None
        assert str(want) in decision.refusal, decision.refusal
        assert decision.hint


def test_a_lapsed_certification_points_to_the_dmz_and_an_officer() -> None:
    decision = decide_zone(ZoneInputs(USER, REVOKED, (), None, T, "high"))
    assert decision.hint is not None and "--zone dmz" in decision.hint
    assert "security officer" in decision.hint


def test_severity_order() -> None:
    order = ["unknown", "low", "medium", "high", "critical"]
    assert sorted(order, key=severity_rank) == order
    assert at_or_above("HIGH", "high") and at_or_above("critical", "high")
    assert not at_or_above("medium", "high") and not at_or_above(None, "low")
