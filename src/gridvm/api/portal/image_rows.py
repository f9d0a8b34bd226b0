"""What the "My images" page shows of each image: the image, whether the user may change
it, and its vulnerability status in words ("none found", "2 high, 1 low", "not scanned")."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from gridvm.common.errors import NotFound
from gridvm.schemas.images import ImageOut, TrustClass
from gridvm.schemas.inspection import SEVERITY_ORDER, Severity, VulnerabilitiesOut
from gridvm.services.principal import Principal
from gridvm.services.server import ServerServices


@dataclass(frozen=True)
class ImageRow:
    image: ImageOut
    mine: bool  # the user may rename, share and delete it
    vulns: str
    # The worst severity found (a badge class), or "" when none / not scanned.
    worst: str


def vuln_summary(found: VulnerabilitiesOut | None) -> tuple[str, str]:
    """The scan in words, and the worst severity found ("" if none)."""
    if found is None or not found.scanned:
        return "not scanned", ""
    if not found.vulns:
        return "none found", ""
    counts = Counter(v.severity for v in found.vulns)
    worst_first = [s for s in reversed(SEVERITY_ORDER) if counts[s]]
    text = ", ".join(f"{counts[s]} {s.value}" for s in worst_first)
    return text, worst_first[0].value


def _scan(svc: ServerServices, who: Principal, image: ImageOut) -> VulnerabilitiesOut | None:
    try:
        return svc.inspections.vulnerabilities(who, image.id, Severity.unknown)
    except NotFound:  # not inspected yet
        return None


def image_rows(svc: ServerServices, who: Principal, shared: bool) -> list[ImageRow]:
    """The user's own images (with ``shared``: every image they may use)."""
    rows = []
    for image in svc.images.list_images(who):
        mine = image.owner == who.name
        if not mine and not shared:
            continue
        text, worst = vuln_summary(_scan(svc, who, image))
        rows.append(ImageRow(image, mine or who.is_admin, text, worst))
    return rows


def templates_of(svc: ServerServices, who: Principal) -> list[ImageOut]:
    """The site templates the user may copy."""
    return [i for i in svc.images.list_images(who) if i.trust == TrustClass.site]
