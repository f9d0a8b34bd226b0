"""Request dependencies: the services and the caller's identity.

They take the connection (``HTTPConnection``), so websocket endpoints authenticate
exactly like HTTP ones: a bearer token in the Authorization header of the handshake.
Without that header, an HTTP request may come from the web portal: its session cookie
identifies the user, and any request that changes something must carry the session's
CSRF token in the ``X-CSRF-Token`` header (websockets never take the cookie).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from gridvm.common.errors import Forbidden
from gridvm.services.principal import Principal
from gridvm.services.server import ServerServices


def services(conn: HTTPConnection) -> ServerServices:
    svc = conn.app.state.services
    assert isinstance(svc, ServerServices)
    return svc


SESSION_COOKIE = "gridvm_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _authenticated(conn: HTTPConnection) -> Principal:
    header = conn.headers.get("authorization", "")
    cookie = conn.cookies.get(SESSION_COOKIE)
    if not header and cookie and conn.scope["type"] == "http":
        return _session_principal(conn, cookie)
    scheme, _, secret = header.partition(" ")
    token = secret.strip() if scheme.lower() == "bearer" else None
    return services(conn).identity.authenticate(token)


def _session_principal(conn: HTTPConnection, cookie: str) -> Principal:
    session = services(conn).web_sessions.open(cookie)
    if conn.scope.get("method") not in SAFE_METHODS and not session.csrf_matches(
        conn.headers.get(CSRF_HEADER)
    ):
        raise Forbidden(
            "the request has no valid CSRF token",
            hint="send the portal's X-CSRF-Token header, or use an API token",
        )
    return session.principal


def user_principal(conn: HTTPConnection) -> Principal:
    who = _authenticated(conn)
    who.require_user()
    return who


def agent_principal(conn: HTTPConnection) -> Principal:
    who = _authenticated(conn)
    who.require_agent()
    return who


Services = Annotated[ServerServices, Depends(services)]
# A user or admin of the REST API.
Caller = Annotated[Principal, Depends(user_principal)]
# A host agent (the /agent endpoints).
AgentCaller = Annotated[Principal, Depends(agent_principal)]
