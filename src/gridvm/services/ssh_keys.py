"""Users' SSH public keys: kept on their account, chosen per run, put in the VM's seed."""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct

from sqlalchemy import select

from gridvm.common.errors import Conflict, InvalidInput, NotFound
from gridvm.common.names import new_id, validate_name
from gridvm.schemas.identity import SshKeyOut
from gridvm.services.principal import Principal
from gridvm.store.db import Database
from gridvm.store.models import SshKey

KEY_TYPES = frozenset(
    {
        "ssh-ed25519",
        "ssh-rsa",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "sk-ssh-ed25519@openssh.com",
        "sk-ecdsa-sha2-nistp256@openssh.com",
    }
)


def parse_public_key(text: str) -> tuple[str, str]:
    """The key as one clean ``type base64 [comment]`` line, and its SHA256 fingerprint as
    OpenSSH prints it; refuses anything that is not an OpenSSH public key."""
    line = text.strip()
    parts = line.split(None, 2)
    hint = "give the one-line public key, e.g. the content of ~/.ssh/id_ed25519.pub"
    if "\n" in line or len(parts) < 2 or parts[0] not in KEY_TYPES:
        raise InvalidInput("this is not an SSH public key", hint=hint)
    try:
        blob = base64.b64decode(parts[1], validate=True)
        (length,) = struct.unpack(">I", blob[:4])
        embedded = blob[4 : 4 + length].decode("ascii")
    except (binascii.Error, struct.error, UnicodeDecodeError) as exc:
        raise InvalidInput("the SSH public key's data is damaged", hint=hint) from exc
    if embedded != parts[0]:
        raise InvalidInput(f"the key says {parts[0]} but holds a {embedded} key", hint=hint)
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return " ".join(parts), f"SHA256:{digest}"


def _out(key: SshKey) -> SshKeyOut:
    return SshKeyOut(
        name=key.name,
        fingerprint=key.fingerprint,
        public_key=key.public_key,
        created_at=key.created_at,
    )


class SshKeyService:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, who: Principal, name: str, public_key: str) -> SshKeyOut:
        validate_name(name, what="key name")
        line, fingerprint = parse_public_key(public_key)
        with self.db.session() as s:
            if s.scalar(
                select(SshKey.id).where(SshKey.owner_id == who.user_id, SshKey.name == name)
            ):
                raise Conflict(f"you have a key named {name!r} already", hint="remove it first")
            key = SshKey(
                id=new_id("key"),
                owner_id=who.user_id,
                name=name,
                public_key=line,
                fingerprint=fingerprint,
            )
            s.add(key)
            s.flush()
            return _out(key)

    def list_keys(self, who: Principal) -> list[SshKeyOut]:
        with self.db.session() as s:
            query = select(SshKey).where(SshKey.owner_id == who.user_id).order_by(SshKey.name)
            return [_out(k) for k in s.scalars(query)]

    def remove(self, who: Principal, name: str) -> None:
        with self.db.session() as s:
            key = s.scalar(
                select(SshKey).where(SshKey.owner_id == who.user_id, SshKey.name == name)
            )
            if key is None:
                raise NotFound(f"you have no SSH key named {name!r}", hint="gridvm ssh-key list")
            s.delete(key)

    def public_keys(self, owner_id: str, names: list[str]) -> list[str]:
        """The owner's keys of these names, in order; an unknown name is refused."""
        with self.db.session() as s:
            keys = {
                k.name: k.public_key
                for k in s.scalars(select(SshKey).where(SshKey.owner_id == owner_id))
            }
        for name in names:
            if name not in keys:
                raise NotFound(
                    f"you have no SSH key named {name!r}",
                    hint="add it: gridvm ssh-key add NAME FILE",
                )
        return [keys[name] for name in dict.fromkeys(names)]
