"""Per-VM tokens: what a running guest shows the server to report about itself.

A token names one boot of one VM (``gvt.<vm id>.<attempt>.<boot>.<MAC>``) and is
signed with a key derived from the site's secrets key, so nothing is stored: the
server recomputes the MAC, then checks that the VM is still on that attempt and
boot and has not ended. A restart or redeploy therefore retires the old token.
The token opens the guest API (``/api/v1/guest``) for that VM and nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from gridvm.common.errors import Unauthorized

PREFIX = "gvt"
_TOKEN_RE = re.compile(
    r"gvt\.([A-Za-z0-9_-]{1,32})\.([0-9]{1,9})\.([0-9]{1,9})\.([A-Za-z0-9_-]{43})"
)


@dataclass(frozen=True)
class GuestIdentity:
    """The VM boot a valid token speaks for."""

    vm_id: str
    attempt: int
    boot: int


class GuestTokens:
    def __init__(self, site_key: bytes) -> None:
        self._key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"gridvm guest token v1"
        ).derive(site_key)

    def _mac(self, vm_id: str, attempt: int, boot: int) -> str:
        message = f"{vm_id}.{attempt}.{boot}".encode()
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def issue(self, vm_id: str, attempt: int, boot: int) -> str:
        return f"{PREFIX}.{vm_id}.{attempt}.{boot}.{self._mac(vm_id, attempt, boot)}"

    def verify(self, token: str) -> GuestIdentity:
        """The VM boot the token was issued for; raises Unauthorized if it is not genuine."""
        match = _TOKEN_RE.fullmatch(token)
        if match is not None:
            vm_id, attempt, boot, mac = match[1], int(match[2]), int(match[3]), match[4]
            if hmac.compare_digest(mac, self._mac(vm_id, attempt, boot)):
                return GuestIdentity(vm_id, attempt, boot)
        raise Unauthorized(
            "this is not a valid VM token", hint="a VM finds its token in /run/gridvm/token"
        )
