"""Web portal sessions: a browser logs in once with an API token and then holds a cookie.

The cookie carries a random secret; only its sha256 is stored. A session lasts
``lifetime`` from login and dies with the token it was opened with (revoke the token,
the session ends). Each session has a CSRF token the portal puts in its forms and
scripts: a page of another site can make the browser send the cookie, but cannot
read the CSRF token, so its requests are refused.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select

from gridvm.common.errors import Unauthorized
from gridvm.common.names import new_id
from gridvm.services.identity import IdentityService, principal_of
from gridvm.services.principal import Principal
from gridvm.store.db import Database
from gridvm.store.models import WebSession, utcnow

DEFAULT_LIFETIME = timedelta(hours=12)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class OpenSession:
    """A session as a request sees it: who, and the CSRF token to expect."""

    principal: Principal
    csrf_token: str

    def csrf_matches(self, sent: str | None) -> bool:
        return sent is not None and hmac.compare_digest(sent, self.csrf_token)


@dataclass(frozen=True)
class NewSession:
    secret: str
    session: OpenSession
    lifetime: timedelta


class WebSessionService:
    def __init__(
        self, db: Database, identity: IdentityService, lifetime: timedelta = DEFAULT_LIFETIME
    ) -> None:
        self.db = db
        self.identity = identity
        self.lifetime = lifetime

    def login(self, api_token: str | None) -> NewSession:
        """Open a session for the holder of ``api_token`` (users and admins, not agents)."""
        who = self.identity.authenticate(api_token)
        who.require_user()
        assert who.token_id is not None
        secret = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        now = utcnow()
        with self.db.session() as s:
            s.execute(delete(WebSession).where(WebSession.expires_at < now))
            s.add(
                WebSession(
                    id=new_id("ses"),
                    secret_sha256=_hash(secret),
                    token_id=who.token_id,
                    csrf_token=csrf,
                    created_at=now,
                    expires_at=now + self.lifetime,
                )
            )
        return NewSession(secret, OpenSession(who, csrf), self.lifetime)

    def open(self, secret: str | None) -> OpenSession:
        if not secret:
            raise Unauthorized("not logged in", hint="log in with an API token")
        with self.db.session() as s:
            row = s.scalar(select(WebSession).where(WebSession.secret_sha256 == _hash(secret)))
            if row is None or row.expires_at <= utcnow():
                raise Unauthorized(
                    "the portal session has ended", hint="log in again with an API token"
                )
            return OpenSession(principal_of(row.token.user, row.token), row.csrf_token)

    def logout(self, secret: str | None) -> None:
        if secret:
            with self.db.session() as s:
                s.execute(delete(WebSession).where(WebSession.secret_sha256 == _hash(secret)))
