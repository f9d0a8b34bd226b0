"""Where an image may run: the deploy-time zone policy, as a pure function.

``site`` and ``certified`` images may run in the trusted zone; ``user`` images only
in the DMZ. Whatever the zone, an image carrying credentials, or with a
vulnerability at or above the site's block severity, is not deployed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from gridvm.schemas.hosts import Zone
from gridvm.schemas.images import TrustClass
from gridvm.schemas.inspection import SEVERITY_ORDER

# From least to most severe (the inspection's order); anything else counts as "unknown".
SEVERITIES: tuple[str, ...] = tuple(s.value for s in SEVERITY_ORDER)


def severity_rank(severity: str | None) -> int:
    """The rank of ``severity`` in SEVERITIES (0 for unknown or missing)."""
    value = (severity or "unknown").lower()
    return SEVERITIES.index(value) if value in SEVERITIES else 0


def at_or_above(severity: str | None, block: str) -> bool:
    """Whether ``severity`` reaches the block severity ``block``."""
    return severity is not None and severity_rank(severity) >= severity_rank(block)


class CertState(StrEnum):
    """The state of an image's latest certification."""

    none = "none"
    valid = "valid"
    expired = "expired"
    revoked = "revoked"


@dataclass(frozen=True)
class ZoneInputs:
    # The class the image was given (site, certified, user); a lapsed certification
    # is told by ``certification``.
    image_class: TrustClass
    certification: CertState
    # Credential findings of the image's inspection (kind and path), if it was inspected.
    credential_findings: tuple[str, ...]
    worst_severity: str | None
    requested: Zone | None
    block_severity: str
    # When the certification lapsed (expired or revoked), for the message.
    lapsed_at: datetime | None = None


@dataclass(frozen=True)
class ZoneDecision:
    zone: Zone | None
    refusal: str | None = None
    hint: str | None = None

    @property
    def allowed(self) -> bool:
        return self.zone is not None


def _refuse(reason: str, hint: str) -> ZoneDecision:
    return ZoneDecision(zone=None, refusal=reason, hint=hint)


def decide_zone(inputs: ZoneInputs) -> ZoneDecision:
    """The zone a VM of this image runs in, or why it may not run at all."""
    if inputs.credential_findings:
        shown = ", ".join(inputs.credential_findings[:5])
        more = len(inputs.credential_findings) - 5
        return _refuse(
            f"the image carries credentials ({shown}{f' and {more} more' if more > 0 else ''})",
            "remove them from the image and upload it again: credentials reach a VM only "
            "through its seed (gridvm secret, --ssh-key, --file)",
        )
    if at_or_above(inputs.worst_severity, inputs.block_severity):
        return _refuse(
            f"the image has a {inputs.worst_severity} vulnerability (the site blocks"
            f" {inputs.block_severity} and above)",
            "update the image's packages and upload it again; see them with: "
            "gridvm image show IMAGE",
        )
    trusted_ok = inputs.image_class == TrustClass.site or (
        inputs.image_class == TrustClass.certified and inputs.certification == CertState.valid
    )
    if inputs.requested is None:
        return ZoneDecision(zone=Zone.trusted if trusted_ok else Zone.dmz)
    if inputs.requested == Zone.dmz or trusted_ok:
        return ZoneDecision(zone=inputs.requested)
    if inputs.certification in (CertState.expired, CertState.revoked):
        when = f" on {inputs.lapsed_at:%Y-%m-%d}" if inputs.lapsed_at else ""
        return _refuse(
            f"the image's certification was {inputs.certification.value}{when}: it may not run"
            " in the trusted zone",
            "run it in the DMZ with --zone dmz, or ask a security officer to certify it again",
        )
    return _refuse(
        "a user image runs only in the DMZ zone, not the trusted zone",
        "run it with --zone dmz, or ask a security officer to certify it (gridvm image certify)",
    )
