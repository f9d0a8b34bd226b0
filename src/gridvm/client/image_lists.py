"""Signed HEPiX image lists: export this site's, subscribe to other sites'."""

from __future__ import annotations

from urllib.parse import quote

import httpx
from pydantic import TypeAdapter

from gridvm.client.transport import Transport, decode
from gridvm.schemas.image_lists import SubscriptionCreate, SubscriptionOut

_SUB = TypeAdapter(SubscriptionOut)
_SUBS = TypeAdapter(list[SubscriptionOut])


class ImageLists:
    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def export(self) -> bytes:
        """This site's list of public site and certified images, S/MIME-signed by its
        endorser (security officers and admins)."""
        return self._t.request("GET", "/image-list").content

    def subscribe(self, name: str, url: str, endorser_dn: str, ca_pem: str) -> SubscriptionOut:
        """Follow the list at ``url``, signed by ``endorser_dn`` under the CA ``ca_pem``.

        It is fetched at once; ``last_error`` of the answer says why nothing was taken."""
        body = SubscriptionCreate(
            name=name, url=url, endorser_dn=endorser_dn, ca_pem=ca_pem
        ).model_dump(mode="json")
        return decode_long(self._t, "POST", "/image-lists", body)

    def list(self) -> list[SubscriptionOut]:
        return self._t.get("/image-lists", _SUBS)

    def refresh(self, name: str) -> SubscriptionOut:
        """Fetch and apply the list now; ``last_error`` says why nothing was taken."""
        return decode_long(self._t, "POST", f"/image-lists/{quote(name, safe='')}/refresh", None)

    def remove(self, name: str) -> None:
        """Stop following a list: its images stay, without the list's certification."""
        self._t.request("DELETE", f"/image-lists/{quote(name, safe='')}")


def decode_long(t: Transport, method: str, path: str, body: object) -> SubscriptionOut:
    """A request that downloads images on the server before answering: no read limit."""
    response = t.request(method, path, json=body, timeout=httpx.Timeout(30.0, read=None))
    return decode(response, _SUB)
