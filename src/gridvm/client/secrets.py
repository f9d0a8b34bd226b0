"""What users keep for their VMs: secrets (stored encrypted, handed only to the VMs that
name them) and SSH public keys."""

from __future__ import annotations

from urllib.parse import quote

from pydantic import TypeAdapter

from gridvm.client.transport import Transport, decode
from gridvm.schemas.identity import SecretOut, SshKeyOut

_SECRET = TypeAdapter(SecretOut)
_SECRETS = TypeAdapter(list[SecretOut])
_KEY = TypeAdapter(SshKeyOut)
_KEYS = TypeAdapter(list[SshKeyOut])


class Secrets:
    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def create(self, name: str, value: bytes) -> SecretOut:
        """Store ``value`` (a token, a proxy, a licence file); it is never shown back."""
        response = self._t.request(
            "POST",
            "/secrets",
            params={"name": name},
            content=value,
            headers={"Content-Type": "application/octet-stream"},
        )
        return decode(response, _SECRET)

    def list(self) -> list[SecretOut]:
        """Your secrets' names and sizes (never their values)."""
        return self._t.get("/secrets", _SECRETS)

    def delete(self, name: str) -> None:
        self._t.request("DELETE", f"/secrets/{quote(name, safe='')}")


class SshKeys:
    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def add(self, name: str, public_key: str) -> SshKeyOut:
        """Keep an OpenSSH public key on your account (``vm run --ssh-key NAME``)."""
        return self._t.send(
            "POST", "/ssh-keys", _KEY, json={"name": name, "public_key": public_key}
        )

    def list(self) -> list[SshKeyOut]:
        return self._t.get("/ssh-keys", _KEYS)

    def remove(self, name: str) -> None:
        self._t.request("DELETE", f"/ssh-keys/{quote(name, safe='')}")
