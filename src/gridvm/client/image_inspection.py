"""Image inspections and vulnerability scans."""

from __future__ import annotations

from urllib.parse import quote

import httpx
from pydantic import TypeAdapter

from gridvm.client.transport import Transport, decode
from gridvm.schemas.inspection import InspectionOut, Severity, VulnerabilitiesOut

_INSPECTION = TypeAdapter(InspectionOut)
_VULNS = TypeAdapter(VulnerabilitiesOut)


def _ref(ref: str) -> str:
    return quote(ref, safe="")


class Inspections:
    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def get(self, ref: str) -> InspectionOut:
        """What reading the image found: OS, packages, credential findings, scan summary."""
        return self._t.get(f"/images/{_ref(ref)}/inspection", _INSPECTION)

    def refresh(self, ref: str) -> InspectionOut:
        """Inspect the image again (its owner, a security officer or an admin)."""
        response = self._t.request(
            "POST",
            f"/images/{_ref(ref)}/inspection",
            timeout=httpx.Timeout(self._t.timeout, read=None),
        )
        return decode(response, _INSPECTION)

    def vulnerabilities(
        self, ref: str, min_severity: Severity | str = Severity.unknown
    ) -> VulnerabilitiesOut:
        """Known vulnerabilities of the image's packages, worst first."""
        return self._t.get(
            f"/images/{_ref(ref)}/vulnerabilities",
            _VULNS,
            params={"min_severity": Severity(min_severity).value},
        )
