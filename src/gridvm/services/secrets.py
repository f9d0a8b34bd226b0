"""Users' secrets: stored encrypted (Fernet), never shown back or logged, decrypted only
for the seed ISO of a VM that names them."""

from __future__ import annotations

import base64
import os
from pathlib import Path

from cryptography.fernet import Fernet
from sqlalchemy import select

from gridvm.common.errors import Conflict, InvalidInput, NotFound
from gridvm.common.names import new_id, validate_name
from gridvm.common.units import format_size
from gridvm.schemas.identity import SecretOut
from gridvm.services.principal import Principal
from gridvm.store.db import Database
from gridvm.store.models import Secret


def load_or_create_key(path: Path) -> bytes:
    """The site's secrets key, made at first start (mode 0600, beside the database)."""
    if path.exists():
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key + b"\n")
    return key


def _out(secret: Secret) -> SecretOut:
    return SecretOut(name=secret.name, size=secret.size, created_at=secret.created_at)


class SecretService:
    def __init__(self, db: Database, key: bytes, max_bytes: int) -> None:
        self.db = db
        self._fernet = Fernet(key)
        self.max_bytes = max_bytes

    def create(self, who: Principal, name: str, value: bytes) -> SecretOut:
        validate_name(name, what="secret name")
        if not value:
            raise InvalidInput("the secret is empty", hint="send its content as the request body")
        if len(value) > self.max_bytes:
            raise InvalidInput(
                f"the secret is {format_size(len(value))}, more than the "
                f"{format_size(self.max_bytes)} allowed",
                hint="secrets are for tokens, proxies and licences; put data in images",
            )
        with self.db.session() as s:
            if s.scalar(
                select(Secret.id).where(Secret.owner_id == who.user_id, Secret.name == name)
            ):
                raise Conflict(f"you have a secret named {name!r} already", hint="delete it first")
            secret = Secret(
                id=new_id("sec"),
                name=name,
                owner_id=who.user_id,
                ciphertext=self._fernet.encrypt(value),
                size=len(value),
            )
            s.add(secret)
            s.flush()
            return _out(secret)

    def list_secrets(self, who: Principal) -> list[SecretOut]:
        with self.db.session() as s:
            query = select(Secret).where(Secret.owner_id == who.user_id).order_by(Secret.name)
            return [_out(x) for x in s.scalars(query)]

    def delete(self, who: Principal, name: str) -> None:
        with self.db.session() as s:
            secret = s.scalar(
                select(Secret).where(Secret.owner_id == who.user_id, Secret.name == name)
            )
            if secret is None:
                raise NotFound(f"you have no secret named {name!r}", hint="gridvm secret list")
            s.delete(secret)

    def check_names(self, owner_id: str, names: list[str]) -> None:
        """Refuse a request naming a secret the user does not have (another user's included)."""
        if len(set(names)) != len(names):
            raise InvalidInput("a secret is named twice")
        with self.db.session() as s:
            have = set(s.scalars(select(Secret.name).where(Secret.owner_id == owner_id)))
        for name in names:
            if name not in have:
                raise NotFound(
                    f"you have no secret named {name!r}",
                    hint="store it first: gridvm secret create NAME FILE",
                )

    def decrypted(self, owner_id: str, names: list[str]) -> dict[str, str]:
        """Name → base64 of the value, for one VM's seed ISO."""
        with self.db.session() as s:
            rows = s.scalars(
                select(Secret).where(Secret.owner_id == owner_id, Secret.name.in_(names))
            ).all()
            return {
                row.name: base64.b64encode(self._fernet.decrypt(row.ciphertext)).decode()
                for row in rows
            }
